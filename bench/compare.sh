#!/usr/bin/env bash
# latch against its floors (and the peers of ../shared/peers when present), one table.
#
#   bash bench/compare.sh [sqlite|postgres]
#
# Every figure is a ratio against a floor measured in the same run on the same machine:
#   - HTTP floor: a bare axum handler (examples/bare.rs), for /healthz and verify_auth;
#   - hash floor: Argon2id verifications/s with one thread per core (examples/argon2_floor.rs),
#     for sign-ins/s.
# Rows: /healthz, verify_auth with a cookie (wrk -t2 -c32; again with the opt-in session
# cache, session_cache_ms=1000), sign-ins/s (32 concurrent, the
# whole CSRF + login exchange), the p99 of verify_auth on 16 connections alone and during a
# 16-connection sign-in flood, peak RSS after 32 concurrent sign-ins, and the time from start
# to the first answer of /readyz on an existing database.
# With ROUNDS=N (default 1) the floors and latch are measured alternately N times and each
# ratio is the median of the rounds' ratios, with their range: on a shared machine the
# floors themselves move between runs, and a ratio taken within one round cancels most of it.
# Env: DURATION (10s), THREADS (2), CONNS (32), ROUNDS (1), PEERS (1: bench ../shared/peers if present),
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

secs=${duration%s}
rounds=${ROUNDS:-1}
# One round: both floors and latch, alternating; appends to the arrays below.
r_floor_h=(); r_floor_v=(); r_latch_h=(); r_latch_v=(); r_alone=(); r_flood=(); r_flood_s=()
r_hash=(); r_signins=()
for _ in $(seq 1 "$rounds"); do
  read -r v _ < <(wrk_run "$conns" http://127.0.0.1:18081/healthz); r_floor_h+=("$v")
  read -r v _ < <(wrk_run "$conns" http://127.0.0.1:18080/healthz); r_latch_h+=("$v")
  read -r v _ < <(wrk_run "$conns" http://127.0.0.1:18081/api/auth/verify_auth); r_floor_v+=("$v")
  read -r v _ < <(wrk_run "$conns" -H "Cookie: $cookie" http://127.0.0.1:18080/api/auth/verify_auth); r_latch_v+=("$v")
  read -r _ v < <(wrk_run 16 -H "Cookie: $cookie" http://127.0.0.1:18080/api/auth/verify_auth); r_alone+=("$v")
  ${FLOOD_NICE:+nice -n $FLOOD_NICE} python3 "$work/signin.py" flood 16 "$((secs + 2))" >"$work/flood16" & flood=$!
  sleep 1
  read -r _ v < <(wrk_run 16 -H "Cookie: $cookie" http://127.0.0.1:18080/api/auth/verify_auth); r_flood+=("$v")
  wait "$flood"; r_flood_s+=("$(cat "$work/flood16")")
  r_hash+=("$("$target/release/examples/argon2_floor" 5 | awk '{print $3}')")
  r_signins+=("$(python3 "$work/signin.py" flood 32 "$secs")")
done
# median of the values given
median() { python3 -c 'import sys, statistics; print(f"{statistics.median(map(float, sys.argv[1:])):.2f}")' "$@"; }
# median of the per-round ratios a[i]/b[i] ("a values" -- "b values"), with their range when N > 1
ratios() {
  python3 - "$@" <<'RATIO'
import sys, statistics
args = sys.argv[1:]; cut = args.index("--")
r = [float(a) / float(b) for a, b in zip(args[:cut], args[cut + 1:])]
m = f"{statistics.median(r):.2f}"
print(m if len(r) == 1 else f"{m} ({min(r):.2f}-{max(r):.2f})")
RATIO
}
floor_h=$(median "${r_floor_h[@]}"); floor_v=$(median "${r_floor_v[@]}")
latch_h=$(median "${r_latch_h[@]}"); latch_v=$(median "${r_latch_v[@]}")
p99_alone=$(median "${r_alone[@]}"); p99_flood=$(median "${r_flood[@]}")
hash_floor=$(median "${r_hash[@]}"); signins=$(median "${r_signins[@]}")
rss_kib=$(awk '/^VmHWM:/{print $2}' "/proc/$latch_pid/status")

# --- the same latch with the opt-in session cache (session_cache_ms=1000): verify_auth only
kill "$latch_pid"; wait "$latch_pid" 2>/dev/null || true
LATCH_SESSION_CACHE_MS=1000 "$latch" serve --bind 127.0.0.1:18080 --database "$url" >>"$work/latch.log" 2>&1 & latch_pid=$!; bench_track $latch_pid
wait_up http://127.0.0.1:18080/readyz
read -r latch_vc _ < <(wrk_run "$conns" -H "Cookie: $cookie" http://127.0.0.1:18080/api/auth/verify_auth)
kill "$latch_pid"; wait "$latch_pid" 2>/dev/null || true

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%F); backend: $backend"
echo "floors: bare axum /healthz $floor_h rps, bare axum JSON $floor_v rps, Argon2id $hash_floor verifies/s${ROUNDS:+ (medians of $rounds rounds)}"
echo
printf '| %-34s | %12s | %-26s |\n' "measure" "latch" "ratio / goal"
printf '|%s|%s|%s|\n' "------------------------------------" "--------------" "----------------------------"
printf '| %-34s | %12s | %-26s |\n' "/healthz rps" "$latch_h" "$(ratios "${r_latch_h[@]}" -- "${r_floor_h[@]}") x bare (goal >= 0.9)"
printf '| %-34s | %12s | %-26s |\n' "verify_auth rps ($backend)" "$latch_v" "$(ratios "${r_latch_v[@]}" -- "${r_floor_v[@]}") x bare"
printf '| %-34s | %12s | %-26s |\n' "  with session_cache_ms=1000" "$latch_vc" "$(ratios "$latch_vc" -- "$floor_v") x bare (opt-in)"
printf '| %-34s | %12s | %-26s |\n' "sign-ins/s (32 concurrent)" "$signins" "$(ratios "${r_signins[@]}" -- "${r_hash[@]}") x Argon2 (goal >= 0.85)"
printf '| %-34s | %12s | %-26s |\n' "verify_auth p99 ms, 16 conns" "$p99_alone" ""
printf '| %-34s | %12s | %-26s |\n' "  same during 16-conn sign-in flood" "$p99_flood" "$(ratios "${r_flood[@]}" -- "${r_alone[@]}") x (goal <= 3)"
printf '| %-34s | %12s | %-26s |\n' "  sign-ins/s during that flood" "$(median "${r_flood_s[@]}")" ""
printf '| %-34s | %12s | %-26s |\n' "peak RSS MiB (32 sign-ins)" "$((rss_kib / 1024))" "goal <= 100"
printf '| %-34s | %12s | %-26s |\n' "start to /readyz ms" "$ready_ms" "goal <= 200"

# --- peers (../shared/peers, copied to /tmp/latch-peers: the folder may be read-only)
# Each peer is built or installed in the copy, seeded with user1..user1000 (password1234) in a
# database of this run, started, measured with latch's wrk settings (the cookie comes from one
# login as user1, as ../shared/peers/bench.sh does; only 2xx answers count) and latch's sign-in
# flood (32 Python clients, user1..user32, one connection per sign-in; no CSRF step, which the
# peers' JSON API does not have), then stopped with its workers.
# A peer whose toolchain, install or build is missing is skipped with a one-line reason.
# Peak RSS is the summed VmHWM of the peer's process tree (gunicorn and node:cluster workers).
peers_src=${PEERS_DIR:-../shared/peers}
[ -d "$peers_src" ] || peers_src=/work/shared/peers
peers=/tmp/latch-peers
peer_rows=("latch ($backend)|$latch_h|$latch_v|$signins|$((rss_kib / 1024))")
peer_notes=()
peer_pid=
why=

peer_wrk() { # connections, then wrk args; prints 2xx answers/s; notes any non-2xx
  local c=$1; shift
  local out
  out=$(wrk -t"$threads" -c"$c" -d"$duration" "$@" 2>&1) || return 1
  awk '/ requests in /{n = $1; t = $4; sub(/,$/, "", t)
         if (t ~ /ms$/) { sub(/ms$/, "", t); t /= 1000 } else if (t ~ /m$/) { sub(/m$/, "", t); t *= 60 } else sub(/s$/, "", t) }
       /Non-2xx or 3xx responses:/ { bad = $NF }
       END { if (t > 0) printf "%.1f %d\n", (n - bad) / t, bad; else exit 1 }' <<<"$out"
}
peer_tree() { # PID and its descendants
  local c
  echo "$1"
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null || true); do peer_tree "$c"; done
}
peer_rss_mib() { # summed VmHWM of a process tree
  local p k kib=0
  for p in $(peer_tree "$1"); do
    k=$(awk '/^VmHWM:/{print $2}' "/proc/$p/status" 2>/dev/null || true)
    kib=$((kib + ${k:-0}))
  done
  echo $((kib / 1024))
}
peer_stop() { # TERM the root (gunicorn and node:cluster stop their workers), then the stragglers
  local p pids alive
  read -ra pids <<<"$(peer_tree "$1" | tr '\n' ' ')"
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 50); do
    alive=()
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
    [ ${#alive[@]} = 0 ] && break
    sleep 0.1
  done
  [ ${#alive[@]} = 0 ] || kill -KILL "${alive[@]}" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
peer_start() { # name port dir command...: start it in dir, track it, wait for /healthz
  local name=$1 port=$2 dir=$3 p; shift 3
  if curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; then why="port $port already answers"; return 1; fi
  (cd "$dir" && exec "$@") >>"$work/$name.log" 2>&1 & peer_pid=$!
  bench_track "$peer_pid"
  if ! wait_up "http://127.0.0.1:$port/healthz" 2>/dev/null; then
    peer_stop "$peer_pid"; why="did not answer on :$port ($(tail -n1 "$work/$name.log"))"; return 1
  fi
  sleep 1 # let every worker come up
  for p in $(peer_tree "$peer_pid"); do bench_track "$p"; done
}
peer_measure() { # label port: one row from the running $peer_pid
  local label=$1 base=http://127.0.0.1:$2 cookie code h v s bad
  read -r h bad < <(peer_wrk "$conns" "$base/healthz") || { why="wrk on /healthz failed"; return 1; }
  [ "$bad" = 0 ] || peer_notes+=("$label /healthz: $bad non-2xx answers not counted")
  cookie=$(curl -s -o /dev/null -D - -H 'Content-Type: application/json' \
    --data '{"login":"user1","password":"password1234","remember_me":false}' "$base/api/auth/login" |
    tr -d '\r' | awk 'tolower($1)=="set-cookie:"{sub(/^[^:]*: */,""); sub(/;.*/,""); print}' | paste -sd';' | sed 's/;/; /g') || cookie=
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "$base/api/auth/verify_auth") || code=000
  v=-
  if [ -n "$cookie" ] && [ "$code" = 200 ]; then
    read -r v bad < <(peer_wrk "$conns" -H "Cookie: $cookie" "$base/api/auth/verify_auth") || v=-
    [ "$v" = - ] || [ "$bad" = 0 ] || peer_notes+=("$label verify_auth: $bad non-2xx answers not counted")
  else
    peer_notes+=("$label verify_auth: no working session cookie (login as user1, verify_auth=$code)")
  fi
  s=-
  read -r s bad < <(python3 "$work/peer_signin.py" "$2" 32 "$secs") || s=-
  [ "$s" = - ] || [ "$bad" = 0 ] || peer_notes+=("$label sign-ins: $bad failed sign-ins not counted")
  peer_rows+=("$label|$h|$v|$s|$(peer_rss_mib "$peer_pid")")
}
# latch's sign-in flood for a peer: PORT THREADS SECONDS; prints "sign-ins/s failures"
cat >"$work/peer_signin.py" <<'PY'
import http.client, json, sys, threading, time
port, n, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ok = [0] * n; bad = [0] * n; stop = time.time() + seconds
def worker(i):
    body = json.dumps({"login": f"user{i % 32 + 1}", "password": "password1234", "remember_me": False})
    while time.time() < stop:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port)
            c.request("POST", "/api/auth/login", body, {"Content-Type": "application/json"})
            r = c.getresponse(); r.read(); c.close()
        except OSError:
            bad[i] += 1; return
        if r.status == 200: ok[i] += 1
        else: bad[i] += 1
start = time.time(); ts = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
[t.start() for t in ts]; [t.join() for t in ts]
print(f"{sum(ok) / (time.time() - start):.1f} {sum(bad)}")
PY

peer_axum_login() {
  local bin=$peers/target/release/axum-login-peer db=sqlite://$work/axum_login_peer.sqlite rc
  command -v cargo >/dev/null || { why="cargo not found"; return 1; }
  echo "peers: cargo build axum-login-peer" >&2
  (cd "$peers" && CARGO_TARGET_DIR=$peers/target cargo build --release --quiet -p axum-login-peer) >"$work/axum-login-build.log" 2>&1 ||
    { why="cargo build failed (offline?): $(tail -n1 "$work/axum-login-build.log")"; return 1; }
  DATABASE_URL=$db "$bin" seed 1000 >>"$work/axum-login-peer.log" 2>&1 || { why="seed failed: $(tail -n1 "$work/axum-login-peer.log")"; return 1; }
  peer_start axum-login-peer 8083 "$peers/axum-login-peer" env DATABASE_URL="$db" BIND=127.0.0.1:8083 "$bin" || return 1
  peer_measure "axum-login (sqlite)" 8083; rc=$?
  peer_stop "$peer_pid"; return $rc
}
peer_better_auth() {
  local dir=$peers/better-auth-peer major rc db envs
  { command -v node && command -v npm; } >/dev/null || { why="node/npm not found"; return 1; }
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) || major=0
  [ "${major:-0}" -ge 20 ] || { why="needs Node >= 20, found $(node --version 2>&1)"; return 1; }
  if ! (cd "$dir" && node -e 'new (require("better-sqlite3"))(":memory:"); require.resolve("better-auth"); require.resolve("pg")') >/dev/null 2>&1; then
    echo "peers: npm ci better-auth-peer (compiles better-sqlite3, ~2 min)" >&2
    [ -n "${npm_config_nodedir:-}" ] || [ ! -d /usr/include/node ] || export npm_config_nodedir=/usr
    (cd "$dir" && npm ci --no-audit --no-fund) >"$work/better-auth-install.log" 2>&1 ||
      { why="npm ci failed (offline?): $(tail -n1 "$work/better-auth-install.log")"; return 1; }
  fi
  envs=(NODE_ENV=production WORKERS=2 BIND=127.0.0.1:8084)
  if [ "$backend" = postgres ]; then
    db=better_auth_compare_$$
    bench_database "$db" >/dev/null 2>&1 || { why="could not create PostgreSQL database $db"; return 1; }
    envs+=(DATABASE=postgres "DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db")
  else
    envs+=(DATABASE=sqlite "SQLITE_PATH=$work/better_auth_peer.sqlite")
  fi
  (cd "$dir" && env "${envs[@]}" node server.mjs seed 1000) >>"$work/better-auth-peer.log" 2>&1 ||
    { why="seed failed: $(tail -n1 "$work/better-auth-peer.log")"; return 1; }
  peer_start better-auth-peer 8084 "$dir" env "${envs[@]}" node server.mjs || return 1
  peer_measure "better-auth, 2 workers ($backend)" 8084; rc=$?
  peer_stop "$peer_pid"; return $rc
}
peer_flask() {
  local dir=$peers/flask-seed db=sqlite:///$work/flask_seed.sqlite rc
  command -v python3 >/dev/null || { why="python3 not found"; return 1; }
  echo "peers: pip install flask-seed" >&2
  (cd "$dir" && { [ -x .venv/bin/python ] || python3 -m venv .venv; } && .venv/bin/pip install -q -r requirements.txt) >"$work/flask-install.log" 2>&1 ||
    { why="venv/pip install failed (offline? python3-venv?): $(tail -n1 "$work/flask-install.log")"; return 1; }
  (cd "$dir" && DATABASE_URL=$db .venv/bin/python seed.py 1000) >>"$work/flask-seed.log" 2>&1 ||
    { why="seed failed: $(tail -n1 "$work/flask-seed.log")"; return 1; }
  peer_start flask-seed 8081 "$dir" env DATABASE_URL="$db" .venv/bin/gunicorn -c gunicorn_sync.conf.py app:app || return 1
  peer_measure "Flask, gunicorn 2 sync workers (sqlite)" 8081; rc=$?
  peer_stop "$peer_pid"; return $rc
}

if [ "${PEERS:-1}" = 1 ] && [ -d "$peers_src" ]; then
  if { [ -d "$peers" ] || cp -r "$peers_src" "$peers"; } && chmod -R u+w "$peers"; then
    peer_axum_login || peer_notes+=("axum-login-peer skipped: $why")
    peer_better_auth || peer_notes+=("better-auth-peer skipped: $why")
    peer_flask || peer_notes+=("flask-seed skipped: $why")
  else
    peer_notes+=("peers skipped: could not copy $peers_src to $peers")
  fi
  cell() { # value floor -> "value (ratio)"
    awk -v v="$1" -v f="$2" 'BEGIN { if (v ~ /^[0-9.]+$/ && f > 0) printf "%s (%.2f)", v, v / f; else printf "-" }'
  }
  echo
  echo "latch and its peers, same run, same wrk settings (-t$threads -c$conns -d$duration); (x) = ratio to the floors above:"
  echo
  echo "| system | /healthz rps (x bare) | verify_auth rps (x bare) | sign-ins/s (x Argon2 floor) | peak RSS MiB |"
  echo "|---|---|---|---|---|"
  for row in "${peer_rows[@]}"; do
    IFS='|' read -r name h v s rss <<<"$row"
    echo "| $name | $(cell "$h" "$floor_h") | $(cell "$v" "$floor_v") | $(cell "$s" "$hash_floor") | $rss |"
  done
  echo
  echo "sign-ins/s: 32 Python clients, one connection per sign-in (latch's also fetch a CSRF token first)."
  echo "Hashes: latch and axum-login Argon2id, better-auth and Flask scrypt (N*r = 2^18, 32 MiB)."
  for n in "${peer_notes[@]}"; do echo "- $n"; done
fi
