#!/usr/bin/env bash
# verify_auth and sign-in at 1,000 and at 1,000,000 users with as many live sessions, and the
# purge of 1,000,000 expired sessions under load.
#
#   bash bench/million.sh [sqlite|postgres] [N]        (N defaults to 1000000)
#
# Users and sessions are seeded directly in the database: PostgreSQL with generate_series,
# SQLite with a recursive CTE (sessions through Python's sqlite3, which has SHA-256). Every
# user shares one real Argon2id hash (of "bench password"), computed once by `latch user add`.
# Session i's cookie is "b" followed by i in 42 digits, a valid 43-character secret, stored as
# its SHA-256 like any other.
#
# For each size: verify_auth throughput (wrk -t2 -c32, one of 1,000 random sessions per
# request) and p99 (wrk -c16), sign-ins/s (32 concurrent). Then 1,000,000 expired sessions
# are added to the large database and latch restarted, which purges them at once: the p99 of
# verify_auth during the purge against the p99 before. Ratios are printed at the end.
# Env: DURATION (10s), LATCH_BIN (target/release/latch), BUILD (1).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
big=${2:-1000000}
duration=${DURATION:-10s}
target=${CARGO_TARGET_DIR:-target}
latch=${LATCH_BIN:-$target/release/latch}
[ "${BUILD:-1}" = 1 ] && cargo build --release --quiet --bin latch
source bench/lib.sh
work=$(mktemp -d)
trap bench_cleanup EXIT
server=
export LATCH_LOG=info NO_COLOR=1

url_for() { # size -> database url
  if [ "$backend" = postgres ]; then echo "postgres://postgres@127.0.0.1:5432/latch_million_$$_$1"; else echo "sqlite://$work/db$1.sqlite"; fi
}

seed() { # size: users and live sessions, one each
  local n=$1 url; url=$(url_for "$n")
  [ "$backend" = postgres ] && bench_database "latch_million_$$_$n" >/dev/null
  "$latch" migrate --database "$url" >/dev/null
  printf 'bench password\n' | "$latch" user add seed seed@example.com --password-stdin --database "$url" >/dev/null
  local now; now=$(date +%s)
  if [ "$backend" = postgres ]; then
    psql -q -h 127.0.0.1 -U postgres "latch_million_$$_$n" <<SQL
INSERT INTO users (username, username_norm, email, email_norm, password_hash, created_at)
SELECT 'user' || i, 'user' || i, 'user' || i || '@example.com', 'user' || i || '@example.com',
       (SELECT password_hash FROM users WHERE username = 'seed'), $now
FROM generate_series(1, $n) i;
INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, factors)
SELECT sha256(convert_to('b' || lpad(i::text, 42, '0'), 'UTF8')), u.id, $now, $now, ''
FROM generate_series(1, $n) i JOIN users u ON u.username_norm = 'user' || i;
VACUUM ANALYZE;
SQL
  else
    python3 - "$work/db$n.sqlite" "$n" "$now" <<'PY'
import hashlib, sqlite3, sys
path, n, now = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = sqlite3.connect(path)
db.execute(f"""WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n})
INSERT INTO users (username, username_norm, email, email_norm, password_hash, created_at)
SELECT 'user' || i, 'user' || i, 'user' || i || '@example.com', 'user' || i || '@example.com',
       (SELECT password_hash FROM users WHERE username = 'seed'), {now} FROM seq""")
first = db.execute("SELECT id FROM users WHERE username = 'user1'").fetchone()[0]
rows = ((hashlib.sha256(("b" + str(i).zfill(42)).encode()).digest(), first + i - 1, now, now)
        for i in range(1, n + 1))
db.executemany("INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, factors) VALUES (?, ?, ?, ?, '')", rows)
db.commit(); db.execute("ANALYZE"); db.close()
PY
  fi
}

add_expired() { # size: as many expired sessions (idle for ten days)
  local n=$1 old=$(( $(date +%s) - 864000 ))
  if [ "$backend" = postgres ]; then
    psql -q -h 127.0.0.1 -U postgres "latch_million_$$_$n" <<SQL
INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, factors)
SELECT sha256(convert_to('x' || i, 'UTF8')), (SELECT min(id) FROM users) + i % $n, $old, $old, ''
FROM generate_series(1, $n) i;
VACUUM ANALYZE sessions;
SQL
  else
    python3 - "$work/db$n.sqlite" "$n" "$old" <<'PY'
import hashlib, sqlite3, sys
path, n, old = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = sqlite3.connect(path)
first = db.execute("SELECT min(id) FROM users").fetchone()[0]
rows = ((hashlib.sha256(f"x{i}".encode()).digest(), first + i % n, old, old) for i in range(n))
db.executemany("INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, factors) VALUES (?, ?, ?, ?, '')", rows)
db.commit(); db.close()
PY
  fi
}

start() { # size
  "$latch" serve --bind 127.0.0.1:18095 --database "$(url_for "$1")" >"$work/latch$1.log" 2>&1 &
  server=$!
  bench_track "$server"
  wait_up http://127.0.0.1:18095/readyz || { cat "$work/latch$1.log" >&2; return 1; }
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; server=; }

# wrk: each request carries the cookie of one of 1,000 sessions drawn from 1..size.
cookies_lua() { # size
  python3 - "$1" >"$work/cookies$1.lua" <<'PY'
import random, sys
n = int(sys.argv[1]); random.seed(14)
ids = [random.randint(1, n) for _ in range(1000)]
print("local cookies = {" + ",".join(f'"latch_session=b{str(i).zfill(42)}"' for i in ids) + "}")
print("local k = 0\nrequest = function()\n  k = k % #cookies + 1\n  return wrk.format('GET', '/api/auth/verify_auth', {Cookie = cookies[k]})\nend")
PY
}
verify() { # size conns -> "rps p99_ms"
  local out; out=$(wrk -t2 -c"$2" -d"$duration" --latency -s "$work/cookies$1.lua" http://127.0.0.1:18095/api/auth/verify_auth)
  if grep -q "Non-2xx" <<<"$out"; then echo "verify_auth answered non-2xx:" >&2; echo "$out" >&2; fi
  echo "$(awk '/^Requests\/sec:/{print $2}' <<<"$out") $(to_ms "$(awk '$1=="99%"{print $2}' <<<"$out")")"
}
signins() { # size -> sign-ins/s, 32 threads, users drawn from 1..size
  python3 - "$1" "${duration%s}" <<'PY'
import http.client, json, random, sys, threading, time
n, seconds = int(sys.argv[1]), float(sys.argv[2]); done = [0] * 32; stop = time.time() + seconds
def worker(k):
    rnd = random.Random(k)
    while time.time() < stop:
        c = http.client.HTTPConnection("127.0.0.1", 18095)
        c.request("GET", "/api/auth/csrf"); r = c.getresponse(); body = r.read()
        cookie = r.getheader("Set-Cookie").split(";")[0]; token = json.loads(body)["csrf_token"]
        c.request("POST", "/api/auth/login", json.dumps({"login": f"user{rnd.randint(1, n)}", "password": "bench password"}),
                  {"Content-Type": "application/json", "Cookie": cookie, "X-CSRF-Token": token})
        r = c.getresponse(); r.read(); assert r.status == 200, r.status; done[k] += 1
start = time.time(); ts = [threading.Thread(target=worker, args=(k,)) for k in range(32)]
[t.start() for t in ts]; [t.join() for t in ts]
print(f"{sum(done) / (time.time() - start):.1f}")
PY
}

declare -A rps p99 sign
for n in 1000 "$big"; do
  echo "== seeding $n users and $n sessions ($backend)" >&2
  t0=$(date +%s); seed "$n"; echo "   seeded in $(( $(date +%s) - t0 )) s" >&2
  cookies_lua "$n"
  start "$n"
  read -r rps[$n] _ < <(verify "$n" 32)
  read -r _ p99[$n] < <(verify "$n" 16)
  sign[$n]=$(signins "$n")
  stop
done

echo "== adding $big expired sessions, restarting (the purge starts at once)" >&2
add_expired "$big"
start "$big"
read -r _ p99_purge < <(verify "$big" 16)
for _ in $(seq 1 600); do grep -q "purged expired sessions" "$work/latch$big.log" && break; sleep 0.5; done
purged=$(grep -o 'deleted=[0-9]*' "$work/latch$big.log" | head -1 || true)
read -r _ p99_after < <(verify "$big" 16)
stop

r() { python3 -c "print(f'{float(\"$1\")/float(\"$2\"):.2f}')"; }
echo
echo "machine: $(nproc) cores, $(date -u +%F); backend: $backend"
printf '| %-36s | %12s | %12s | %-22s |\n' "measure" "1,000" "$big" "ratio (goal)"
printf '|%s|%s|%s|%s|\n' "--------------------------------------" "--------------" "--------------" "------------------------"
printf '| %-36s | %12s | %12s | %-22s |\n' "verify_auth rps (c32)" "${rps[1000]}" "${rps[$big]}" "$(r "${rps[$big]}" "${rps[1000]}") (>= 0.9)"
printf '| %-36s | %12s | %12s | %-22s |\n' "verify_auth p99 ms (c16)" "${p99[1000]}" "${p99[$big]}" ""
printf '| %-36s | %12s | %12s | %-22s |\n' "sign-ins/s (32 concurrent)" "${sign[1000]}" "${sign[$big]}" "$(r "${sign[$big]}" "${sign[1000]}") (>= 0.9)"
printf '| %-36s | %12s | %12s | %-22s |\n' "verify_auth p99 ms during the purge" "" "$p99_purge" "$(r "$p99_purge" "${p99[$big]}") x (<= 2)"
printf '| %-36s | %12s | %12s | %-22s |\n' "verify_auth p99 ms after it" "" "$p99_after" ""
echo "purge: ${purged:-not finished within 300 s} ($(grep 'purged expired sessions' "$work/latch$big.log" | head -1 | grep -o 'ms=[0-9]*' || true))"
