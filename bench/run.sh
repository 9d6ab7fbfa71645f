#!/usr/bin/env bash
# Throughput of an authenticated request (verify_auth with a session cookie) against the
# floor of a bare axum handler, measured in the same run, and the latency of a sign-in with
# the default Argon2 parameters. Needs wrk (apt-get install wrk) and a release build.
#   bash bench/run.sh [sqlite|postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
duration=${DURATION:-10s}
threads=${THREADS:-2}
conns=${CONNS:-64}
cargo build --release --quiet --bin latch --example bare
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

if [ "$backend" = postgres ]; then
  db="latch_bench_$$"
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
  trap 'kill $(jobs -p) 2>/dev/null || true; sleep 1; psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS '"$db"' WITH (FORCE)" postgres; rm -rf "$work"' EXIT
  url="postgres://postgres@127.0.0.1:5432/$db"
else
  url="sqlite://$work/bench.db"
fi

./target/release/examples/bare 127.0.0.1:18081 >/dev/null &
LATCH_LOG=warn ./target/release/latch serve --bind 127.0.0.1:18080 --database "$url" >"$work/out" &
for _ in $(seq 1 50); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.2; done

python3 - "$work" <<'PY'
import http.client, json, statistics, sys, time
work = sys.argv[1]

def request(method, path, body=None, cookie=None, token=None):
    c = http.client.HTTPConnection("127.0.0.1", 18080)
    headers = {"Content-Type": "application/json"}
    if cookie: headers["Cookie"] = cookie
    if token: headers["X-CSRF-Token"] = token
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = c.getresponse(); data = r.read()
    set_cookie = r.getheader("Set-Cookie")
    return r.status, data, (set_cookie.split(";")[0] if set_cookie else cookie)

def anon():
    status, data, cookie = request("GET", "/api/auth/csrf")
    return cookie, json.loads(data)["csrf_token"]

cookie, token = anon()
status, _, cookie = request("POST", "/api/auth/signup", {"username": "bench", "email": "bench@example.com", "password": "a long bench passphrase"}, cookie, token)
assert status == 201, status
open(f"{work}/cookie", "w").write(cookie)

latencies = []
for _ in range(20):
    c, t = anon()
    start = time.perf_counter()
    status, _, _ = request("POST", "/api/auth/login", {"login": "bench", "password": "a long bench passphrase"}, c, t)
    latencies.append((time.perf_counter() - start) * 1000)
    assert status == 200, status
print(f"sign-in latency (default Argon2id, sequential, n=20): median {statistics.median(latencies):.1f} ms, min {min(latencies):.1f} ms, max {max(latencies):.1f} ms")
PY

cookie=$(cat "$work/cookie")
run() { wrk -t"$threads" -c"$conns" -d"$duration" "$@" | awk '/Requests\/sec/ {print $2}'; }
bare=$(run http://127.0.0.1:18081/api/auth/verify_auth)
latch=$(run -H "Cookie: $cookie" http://127.0.0.1:18080/api/auth/verify_auth)
anon=$(run http://127.0.0.1:18080/healthz)
echo "bare axum handler:              $bare req/s"
echo "latch /healthz (no session):    $anon req/s"
echo "latch verify_auth ($backend):   $latch req/s"
python3 -c "print(f'ratio verify_auth / bare axum: {float(\"$latch\")/float(\"$bare\"):.2f}')"
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" http://127.0.0.1:18080/api/auth/verify_auth)
echo "(sanity: verify_auth with the cookie answers $status)"
