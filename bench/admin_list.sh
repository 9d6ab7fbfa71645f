#!/usr/bin/env bash
# Latency of the admin user list, GET /api/admin/users, over N seeded users (default one
# million): page 1, deep pages, the last page, and prefix searches of 1, 2 and 3 characters.
# Usernames are 6 hex digits of a hash of a counter, then the counter, so a 1-character prefix matches 1/16 of
# everyone. Each request is timed 20 times after 3 warm-ups, sequentially, one client.
#   bash bench/admin_list.sh [sqlite|postgres] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
n=${2:-1000000}
cargo build --release --quiet --bin latch
bin=$PWD/target/release/latch
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export LATCH_ARGON2_MEMORY_KIB=256 LATCH_ARGON2_ITERATIONS=1 LATCH_MAIL_OUTBOX="$work/outbox"

if [ "$backend" = postgres ]; then
  db="latch_bench_$$"
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
  trap 'kill $(jobs -p) 2>/dev/null || true; sleep 1; psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS '"$db"' WITH (FORCE)" postgres; rm -rf "$work"' EXIT
  url="postgres://postgres@127.0.0.1:5432/$db"
  "$bin" migrate --database "$url" >/dev/null
  psql -q -h 127.0.0.1 -U postgres "$db" <<SQL
INSERT INTO users (username, username_norm, email, email_norm, password_hash, roles, created_at)
SELECT name, name, name || '@example.com', name || '@example.com', 'x', '', 1700000000
FROM (SELECT substr(md5(n::text), 1, 6) || n AS name FROM generate_series(1, $n) n) s;
VACUUM ANALYZE users;
SQL
else
  url="sqlite://$work/bench.db"
  "$bin" migrate --database "$url" >/dev/null
  sqlite3 "$work/bench.db" <<SQL
WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < $n)
INSERT INTO users (username, username_norm, email, email_norm, password_hash, roles, created_at)
SELECT name, name, name || '@example.com', name || '@example.com', 'x', '', 1700000000
FROM (SELECT printf('%06x', (n * 2654435761) % 16777216) || n AS name FROM seq);
ANALYZE;
SQL
fi
printf 'a long bench passphrase\n' | "$bin" user add root root@example.com --role admin \
  --password-stdin --database "$url" >/dev/null

LATCH_LOG=warn "$bin" serve --bind 127.0.0.1:18090 --database "$url" >"$work/out" &
for _ in $(seq 1 50); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.2; done

python3 - "$n" <<'PY'
import http.client, json, statistics, sys, time
n = int(sys.argv[1])

def request(method, path, body=None, cookie=None, token=None):
    c = http.client.HTTPConnection("127.0.0.1", 18090)
    headers = {"Content-Type": "application/json"}
    if cookie: headers["Cookie"] = cookie
    if token: headers["X-CSRF-Token"] = token
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = c.getresponse(); data = r.read()
    set_cookie = r.getheader("Set-Cookie")
    return r.status, data, (set_cookie.split(";")[0] if set_cookie else cookie)

status, data, cookie = request("GET", "/api/auth/csrf")
token = json.loads(data)["csrf_token"]
status, _, cookie = request("POST", "/api/auth/login", {"login": "root", "password": "a long bench passphrase"}, cookie, token)
assert status == 200, status

def measure(label, path):
    for _ in range(3):
        request("GET", path, cookie=cookie)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        status, data, _ = request("GET", path, cookie=cookie)
        times.append((time.perf_counter() - start) * 1000)
        assert status == 200, (status, data[:200])
    body = json.loads(data)
    times.sort()
    print(f"{label:<38} total {body['total']:>8}  rows {len(body['users']):>3}  median {statistics.median(times):7.1f} ms  p95 {times[18]:7.1f} ms")
    return body

last = (n + 1 + 49) // 50
measure("page 1", "/api/admin/users?page=1")
measure("page 100", "/api/admin/users?page=100")
measure(f"page {last // 2} (middle)", f"/api/admin/users?page={last // 2}")
measure(f"page {last} (last)", f"/api/admin/users?page={last}")
one = measure("q=a (1 char), page 1", "/api/admin/users?q=a&page=1")
pages = (one["total"] + 49) // 50
measure(f"q=a, page {pages} (last)", f"/api/admin/users?q=a&page={pages}")
measure("q=a3 (2 chars), page 1", "/api/admin/users?q=a3&page=1")
measure("q=a3f (3 chars), page 1", "/api/admin/users?q=a3f&page=1")
measure("q=root (exact), page 1", "/api/admin/users?q=root")
PY
