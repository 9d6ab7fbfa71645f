#!/usr/bin/env bash
# latch against its floors (and the peers of ../shared/peers when present), one table.
#
#   bash bench/compare.sh [sqlite|postgres]
#
# Every figure is a ratio against a floor measured in the same run on the same machine:
#   - HTTP floor: a bare axum handler (examples/bare.rs), for /healthz and verify_auth;
#   - hash floor: Argon2id verifications/s with one thread per core (examples/argon2_floor.rs),
#     for sign-ins/s.
# Rows: /healthz, verify_auth with a cookie (wrk -t2 -c32), sign-ins/s (32 concurrent, the
# whole CSRF + login exchange), the p99 of verify_auth on 16 connections alone and during a
# 16-connection sign-in flood, peak RSS after 32 concurrent sign-ins, and the time from start
# to the first answer of /readyz on an existing database.
# Env: DURATION (10s), THREADS (2), CONNS (32), PEERS (1: bench ../shared/peers if present),
#      BUILD (1), LATCH_BIN (target/release/latch), FLOOD_NICE (unset: the sign-in flood's
#      client runs at normal priority, like wrk).
# Needs wrk, curl, python3 (and psql for postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
duration=${DURATION:-10s}
threads=${THREADS:-2}
conns=${CONNS:-32}
target=${CARGO_TARGET_DIR:-target}
latch=${LATCH_BIN:-$target/release/latch}
if [ "${BUILD:-1}" = 1 ]; then
  cargo build --release --quiet --bin latch --example bare --example argon2_floor
fi
source bench/lib.sh
bench_setup "$backend" "latch_compare_$$"

wrk_run() { # connections, then wrk args; prints "rps p99_ms"
  local c=$1; shift
  local out
  out=$(wrk -t"$threads" -c"$c" -d"$duration" --latency "$@")
  echo "$(awk '/^Requests\/sec:/{print $2}' <<<"$out") $(to_ms "$(awk '$1=="99%"{print $2}' <<<"$out")")"
}

# --- floors
"$target/release/examples/bare" 127.0.0.1:18081 >/dev/null & bench_track $!
wait_up http://127.0.0.1:18081/healthz
hash_floor=$("$target/release/examples/argon2_floor" 5 | awk '{print $3}')

# --- latch: migrate, one user per sign-in thread, then a restart timed to /readyz
export LATCH_LOG=warn
"$latch" migrate --database "$url" >/dev/null
for i in $(seq 1 32); do
  printf 'bench password %s\n' "$i" | "$latch" user add "user$i" "user$i@example.com" --password-stdin --database "$url" >/dev/null
done
start_ns=$(date +%s%N)
"$latch" serve --bind 127.0.0.1:18080 --database "$url" >"$work/latch.log" 2>&1 & latch_pid=$!; bench_track $latch_pid
for _ in $(seq 1 2000); do
  curl -sf -o /dev/null http://127.0.0.1:18080/readyz && break; sleep 0.005
done
ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))

# python helper: sign-in cookie, or a sign-in flood of N threads for S seconds (prints sign-ins/s)
cat >"$work/signin.py" <<'PY'
import http.client, json, sys, threading, time
def session(user):
    c = http.client.HTTPConnection("127.0.0.1", 18080)
    c.request("GET", "/api/auth/csrf"); r = c.getresponse(); body = r.read()
    cookie = r.getheader("Set-Cookie").split(";")[0]; token = json.loads(body)["csrf_token"]
    c.request("POST", "/api/auth/login", json.dumps({"login": f"user{user}", "password": f"bench password {user}"}),
              {"Content-Type": "application/json", "Cookie": cookie, "X-CSRF-Token": token})
    r = c.getresponse(); r.read(); assert r.status == 200, r.status
    return r.getheader("Set-Cookie").split(";")[0]
if sys.argv[1] == "cookie":
    print(session(1))
else:
    n, seconds = int(sys.argv[2]), float(sys.argv[3]); done = [0] * n; stop = time.time() + seconds
    def worker(i):
        while time.time() < stop:
            session(i % 32 + 1); done[i] += 1
    start = time.time(); ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    [t.start() for t in ts]; [t.join() for t in ts]
    print(f"{sum(done) / (time.time() - start):.1f}")
PY
cookie=$(python3 "$work/signin.py" cookie)

read -r floor_h _ < <(wrk_run "$conns" http://127.0.0.1:18081/healthz)
read -r floor_v _ < <(wrk_run "$conns" http://127.0.0.1:18081/api/auth/verify_auth)
read -r latch_h _ < <(wrk_run "$conns" http://127.0.0.1:18080/healthz)
read -r latch_v _ < <(wrk_run "$conns" -H "Cookie: $cookie" http://127.0.0.1:18080/api/auth/verify_auth)
read -r _ p99_alone < <(wrk_run 16 -H "Cookie: $cookie" http://127.0.0.1:18080/api/auth/verify_auth)
secs=${duration%s}
${FLOOD_NICE:+nice -n $FLOOD_NICE} python3 "$work/signin.py" flood 16 "$((secs + 2))" >"$work/flood16" & flood=$!
sleep 1
read -r _ p99_flood < <(wrk_run 16 -H "Cookie: $cookie" http://127.0.0.1:18080/api/auth/verify_auth)
wait "$flood"
signins=$(python3 "$work/signin.py" flood 32 "$secs")
rss_kib=$(awk '/^VmHWM:/{print $2}' "/proc/$latch_pid/status")

ratio() { python3 -c "print(f'{float(\"$1\")/float(\"$2\"):.2f}')"; }
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%F); backend: $backend"
echo "floors: bare axum /healthz $floor_h rps, bare axum JSON $floor_v rps, Argon2id $hash_floor verifies/s"
echo
printf '| %-34s | %12s | %-26s |\n' "measure" "latch" "ratio / goal"
printf '|%s|%s|%s|\n' "------------------------------------" "--------------" "----------------------------"
printf '| %-34s | %12s | %-26s |\n' "/healthz rps" "$latch_h" "$(ratio "$latch_h" "$floor_h") x bare (goal >= 0.9)"
printf '| %-34s | %12s | %-26s |\n' "verify_auth rps ($backend)" "$latch_v" "$(ratio "$latch_v" "$floor_v") x bare"
printf '| %-34s | %12s | %-26s |\n' "sign-ins/s (32 concurrent)" "$signins" "$(ratio "$signins" "$hash_floor") x Argon2 (goal >= 0.85)"
printf '| %-34s | %12s | %-26s |\n' "verify_auth p99 ms, 16 conns" "$p99_alone" ""
printf '| %-34s | %12s | %-26s |\n' "  same during 16-conn sign-in flood" "$p99_flood" "$(ratio "$p99_flood" "$p99_alone") x (goal <= 3)"
printf '| %-34s | %12s | %-26s |\n' "  sign-ins/s during that flood" "$(cat "$work/flood16")" ""
printf '| %-34s | %12s | %-26s |\n' "peak RSS MiB (32 sign-ins)" "$((rss_kib / 1024))" "goal <= 100"
printf '| %-34s | %12s | %-26s |\n' "start to /readyz ms" "$ready_ms" "goal <= 200"

# --- peers (../shared/peers, copied to /tmp: the folder may be read-only)
peers_src=${PEERS_DIR:-../shared/peers}
[ -d "$peers_src" ] || peers_src=/work/shared/peers
if [ "${PEERS:-1}" = 1 ] && [ -d "$peers_src" ]; then
  peers=/tmp/latch-peers
  [ -d "$peers" ] || cp -r "$peers_src" "$peers"
  chmod -R u+w "$peers"
  echo
  echo "peers (same wrk settings; ratios against the floors above):"
  if (cd "$peers" && cargo build --release --quiet -p axum-login-peer 2>/dev/null); then
    (cd "$peers/axum-login-peer" && [ -f axum_login_peer.sqlite ] || ../target/release/axum-login-peer seed 1000 >/dev/null)
    (cd "$peers/axum-login-peer" && BIND=127.0.0.1:8083 exec ../target/release/axum-login-peer >/dev/null 2>&1) & bench_track $!
    wait_up http://127.0.0.1:8083/healthz
    DURATION=$duration CONNS=$conns THREADS=$threads TESTS="healthz verify" LABEL=axum-login "$peers/bench.sh" http://127.0.0.1:8083 |
      awk -v fh="$floor_h" -v fv="$floor_v" '{split($3,a,"="); f = ($2=="healthz") ? fh : fv; printf "  %-12s %-8s %10s rps  %.2f x bare\n", $1, $2, a[2], a[2]/f}'
  else
    echo "  axum-login-peer: build failed (offline?), skipped"
  fi
fi
