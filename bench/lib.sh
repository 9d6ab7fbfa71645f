# Shared by the bench scripts (sourced): a scratch directory, a database per run, process
# cleanup, and wrk's latencies in milliseconds.
#   bench_setup BACKEND NAME   sets $work and $url (a fresh SQLite file or PostgreSQL database)
#   bench_track PID            kills PID at exit
#   bench_database NAME        creates one more PostgreSQL database, dropped at exit; prints its URL

bench_pids=()
bench_dbs=()
bench_cleanup() {
  for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for d in "${bench_dbs[@]}"; do
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" postgres || true
  done
  rm -rf "$work"
}
bench_track() { bench_pids+=("$1"); }
bench_database() {
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $1" postgres
  bench_dbs+=("$1")
  echo "postgres://postgres@127.0.0.1:5432/$1"
}
bench_setup() {
  work=$(mktemp -d)
  trap bench_cleanup EXIT
  if [ "$1" = postgres ]; then
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $2" postgres
    bench_dbs+=("$2")
    url="postgres://postgres@127.0.0.1:5432/$2"
  else
    url="sqlite://$work/$2.db"
  fi
}
# wrk's latency (812.00us, 1.23ms, 2.01s) in ms
to_ms() {
  awk -v v="$1" 'BEGIN{ if (v ~ /us$/) { sub(/us$/,"",v); printf "%.2f", v/1000 }
    else if (v ~ /ms$/) { sub(/ms$/,"",v); printf "%.2f", v }
    else if (v ~ /s$/) { sub(/s$/,"",v); printf "%.0f", v*1000 } else print v }'
}
wait_up() { for _ in $(seq 1 400); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; return 1; }
