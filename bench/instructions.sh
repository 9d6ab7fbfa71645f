#!/usr/bin/env bash
# Instructions per request (valgrind's callgrind), for before/after comparisons of one change:
# unlike requests/s they do not move when other work loads the machine.
#
#   bash bench/instructions.sh [sqlite|postgres] [N]   (N requests per endpoint, default 2000)
#
# Starts latch under callgrind, signs in once, then for /healthz and for verify_auth (with the
# cookie, then with an API token) zeroes the counters, sends N keep-alive requests from one
# client and dumps the counters: instructions / N is the server's cost of one request (the
# PostgreSQL server's own work is not counted). The dumps stay in $OUT (default /tmp/latch-callgrind) for
# callgrind_annotate. Needs valgrind and a release build (LATCH_BIN).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
n=${2:-2000}
target=${CARGO_TARGET_DIR:-target}
latch=${LATCH_BIN:-$target/release/latch}
out=${OUT:-/tmp/latch-callgrind}
rm -rf "$out" && mkdir -p "$out"
source bench/lib.sh
bench_setup "$backend" "latch_ir_$$"
"$latch" migrate --database "$url" >/dev/null
printf 'bench password\n' | "$latch" user add bench bench@example.com --password-stdin --database "$url" >/dev/null
LATCH_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.%p" \
  "$latch" serve --bind 127.0.0.1:18096 --database "$url" >"$work/log" 2>&1 &
bench_track $!
server=$!
for _ in $(seq 1 600); do curl -sf -o /dev/null http://127.0.0.1:18096/readyz && break; sleep 0.1; done

python3 - "$n" "$server" "$out" <<'PY'
import http.client, json, subprocess, sys, glob, os
n, pid, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", 18096, timeout=600)
def get(path, headers={}):
    c.request("GET", path, headers=headers); r = c.getresponse(); body = r.read(); return r, body
r, body = get("/api/auth/csrf")
cookie = r.getheader("Set-Cookie").split(";")[0]; token = json.loads(body)["csrf_token"]
c.request("POST", "/api/auth/login", json.dumps({"login": "bench", "password": "bench password"}),
          {"Content-Type": "application/json", "Cookie": cookie, "X-CSRF-Token": token})
r = c.getresponse(); r.read(); assert r.status == 200, r.status
cookie = r.getheader("Set-Cookie").split(";")[0]
r, body = get("/api/auth/csrf", {"Cookie": cookie})
token = json.loads(body)["csrf_token"]
c.request("POST", "/api/auth/tokens", json.dumps({"name": "bench"}),
          {"Content-Type": "application/json", "Cookie": cookie, "X-CSRF-Token": token})
r = c.getresponse(); body = r.read(); assert r.status == 201, (r.status, body)
bearer = "Bearer " + json.loads(body)["secret"]
for name, path, headers in [("healthz", "/healthz", {}), ("verify_auth", "/api/auth/verify_auth", {"Cookie": cookie}),
                            ("verify_auth_bearer", "/api/auth/verify_auth", {"Authorization": bearer})]:
    for _ in range(200):  # warm: metric handles, statement caches
        assert get(path, headers)[0].status == 200
    subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
    for _ in range(n):
        assert get(path, headers)[0].status == 200
    subprocess.run(["callgrind_control", "-d", name, pid], check=True, capture_output=True)
    dump = max(glob.glob(f"{out}/callgrind.{pid}*"), key=os.path.getmtime)
    total = 0
    for line in open(dump):
        if line.startswith("summary:") or line.startswith("totals:"):
            total = int(line.split()[1]); break
    os.rename(dump, f"{out}/{name}.callgrind")
    print(f"{name}: {total / n:,.0f} instructions per request (n={n}; {out}/{name}.callgrind)")
PY
