#!/usr/bin/env bash
# Schemathesis against a live `latch serve`: first on a temporary SQLite file, then on a fresh
# PostgreSQL database (when a server answers on 127.0.0.1:5432). It reads the served OpenAPI
# document (GET /api/openapi.json), signs in as an administrator made with the CLI, and
# authenticates every generated request with an API token (.ci/schemathesis_hooks.py), so no
# CSRF token is needed. Checks: no 5xx, and status codes, content types and bodies as the
# document says. Phases: examples, coverage, fuzzing, then stateful (following the document's
# links, e.g. token creation -> revocation, post creation -> show/update/delete).
#
# Environment: LATCH_ST_MAX_EXAMPLES (default 15 per operation), LATCH_ST_SEED (default a
# fixed seed, so CI is reproducible; "random" for a new one), LATCH_ST_BACKENDS
# ("sqlite postgres" by default).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'schemathesis>=4,<5'

target="${CARGO_TARGET_DIR:-target}"
cargo build --quiet --bin latch
latch="$target/debug/latch"

max_examples="${LATCH_ST_MAX_EXAMPLES:-15}"
seed="${LATCH_ST_SEED:-20260101}"
backends="${LATCH_ST_BACKENDS:-sqlite postgres}"
work="$(mktemp -d)"
server_pid=""
pg_db=""

cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ -n "$pg_db" ]]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$pg_db\" WITH (FORCE)" postgres >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Generous limits: fuzzed sign-ins and password checks must not lock the test account out
# (429 stays documented and is still answered by the server under real limits).
export LATCH_THROTTLE_ACCOUNT_FAILURES=1000000
export LATCH_THROTTLE_IP_FAILURES=1000000
export LATCH_THROTTLE_IP_SIGNUPS_PER_HOUR=1000000
export LATCH_THROTTLE_IP_MAIL_REQUESTS_PER_HOUR=1000000
export LATCH_THROTTLE_ADDRESS_MAILS_PER_HOUR=1000000
export LATCH_LOG="${LATCH_LOG:-warn}"

run_against() {
  local name="$1" database="$2"
  local dir="$work/$name"
  mkdir -p "$dir"
  echo "== schemathesis on $name"
  local password="schemathesis passphrase 7"
  printf '%s\n' "$password" | "$latch" user add stadmin stadmin@example.com --role admin \
    --password-stdin --database "$database" >/dev/null
  "$latch" serve --bind 127.0.0.1:0 --database "$database" --mail-outbox "$dir/outbox" \
    >"$dir/stdout" 2>"$dir/stderr" &
  server_pid=$!
  local url=""
  for _ in $(seq 1 100); do
    url="$(sed -n 's/^latch listening on \(http:\/\/[^ ]*\).*/\1/p' "$dir/stdout")"
    [[ -n "$url" ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then cat "$dir/stderr" >&2; return 1; fi
    sleep 0.1
  done
  [[ -n "$url" ]] || { echo "latch did not start" >&2; cat "$dir/stderr" >&2; return 1; }

  local seed_args=()
  [[ "$seed" != "random" ]] && seed_args=(--seed "$seed")
  local status=0
  LATCH_ST_URL="$url" LATCH_ST_USER=stadmin LATCH_ST_PASSWORD="$password" \
    PYTHONPATH=".ci${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks \
    schemathesis run "$url/api/openapi.json" \
      --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
      --phases examples,coverage,fuzzing,stateful \
      --max-examples "$max_examples" "${seed_args[@]}" \
      --workers 2 --request-timeout 30 --no-color --generation-database none \
      --report junit --report-dir "$dir/report" || status=$?
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  if grep -E "panicked|ERROR" "$dir/stderr" >/dev/null; then
    echo "server errors during the $name run:" >&2
    grep -E "panicked|ERROR" "$dir/stderr" | head -20 >&2
    status=1
  fi
  return "$status"
}

for backend in $backends; do
  case "$backend" in
    sqlite)
      run_against sqlite "sqlite://$work/latch.db"
      ;;
    postgres)
      if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
        echo "== schemathesis on postgres: no server on 127.0.0.1:5432, skipped"
        continue
      fi
      pg_db="latch_st_$$"
      psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE \"$pg_db\"" postgres
      run_against postgres "postgres://postgres@127.0.0.1:5432/$pg_db"
      psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$pg_db\" WITH (FORCE)" postgres
      pg_db=""
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
done
