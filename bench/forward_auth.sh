#!/usr/bin/env bash
# Forward-auth speed, measured with wrk in one run (never in a timed test):
#  1. `/auth/check` with a valid cookie, a trusted proxy's X-Forwarded-* target and 100 rules
#     for that host (99 path rules that do not match, then the one that does), against
#     `verify_auth` with the same cookie: the rules should not be the cost (goal ≥ 0.9).
#  2. The latency nginx's `auth_request` adds: p50 of one connection through nginx to a bare
#     upstream with and without `auth_request` to latch (goal < 1 ms).
# Needs wrk, nginx (nginx-light) and a release build.
#   bash bench/forward_auth.sh
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10s}
cargo build --release --quiet --bin latch --example bare
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT

{
  echo 'trusted_proxies = ["127.0.0.1"]'
  for i in $(seq 1 99); do
    printf '[[access_rules]]\ndomain = "app.example.com"\npath = "^/area%d/"\npolicy = "bypass"\n\n' "$i"
  done
  printf '[[access_rules]]\ndomain = "app.example.com"\npolicy = "one_factor"\n'
} >"$work/latch.toml"

./target/release/examples/bare 127.0.0.1:18181 >/dev/null &
LATCH_LOG=warn ./target/release/latch --config "$work/latch.toml" serve --bind 127.0.0.1:18180 \
  --database "sqlite://$work/bench.db" >"$work/out" &
for _ in $(seq 1 50); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.2; done

cookie=$(python3 - <<'PY'
import http.client, json
def request(method, path, body=None, cookie=None, token=None):
    c = http.client.HTTPConnection("127.0.0.1", 18180)
    headers = {"Content-Type": "application/json"}
    if cookie: headers["Cookie"] = cookie
    if token: headers["X-CSRF-Token"] = token
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = c.getresponse(); data = r.read(); set_cookie = r.getheader("Set-Cookie")
    return r.status, data, (set_cookie.split(";")[0] if set_cookie else cookie)
status, data, cookie = request("GET", "/api/auth/csrf")
token = json.loads(data)["csrf_token"]
status, _, cookie = request("POST", "/api/auth/signup", {"username": "bench", "email": "bench@example.com", "password": "a long bench passphrase"}, cookie, token)
assert status == 201, status
print(cookie)
PY
)

rps() { wrk -t2 -c32 -d"$duration" "$@" | awk '/Requests\/sec/ {print $2}'; }
target=(-H "X-Forwarded-Proto: https" -H "X-Forwarded-Host: app.example.com" -H "X-Forwarded-Uri: /dashboard" -H "X-Forwarded-Method: GET")
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "${target[@]}" http://127.0.0.1:18180/auth/check)
[ "$status" = 200 ] || { echo "/auth/check answered $status, not 200" >&2; exit 1; }
verify=$(rps -H "Cookie: $cookie" http://127.0.0.1:18180/api/auth/verify_auth)
check=$(rps -H "Cookie: $cookie" "${target[@]}" http://127.0.0.1:18180/auth/check)
echo "verify_auth:                   $verify req/s"
echo "/auth/check, 100 rules:        $check req/s"
python3 -c "print(f'ratio /auth/check / verify_auth: {float(\"$check\")/float(\"$verify\"):.2f}')"

cat >"$work/nginx.conf" <<EOF
pid $work/nginx.pid;
error_log $work/error.log warn;
worker_processes 1;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp;
  uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  upstream app { server 127.0.0.1:18181; keepalive 16; }
  upstream latch { server 127.0.0.1:18180; keepalive 16; }
  server {
    listen 127.0.0.1:18182;
    location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://app; }
  }
  server {
    listen 127.0.0.1:18183;
    location / {
      auth_request /_latch;
      proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://app;
    }
    location = /_latch {
      internal;
      proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_pass_request_body off; proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL https://app.example.com\$request_uri;
      proxy_set_header X-Original-Method \$request_method;
      proxy_pass http://latch/auth/check;
    }
  }
}
EOF
mkdir -p "$work/tmp"
nginx -p "$work" -c "$work/nginx.conf" -e "$work/error.log"
sleep 0.5
p50() { wrk -t1 -c1 -d"$duration" --latency "$@" | awk '$1 == "50%" {print $2}'; }
plain=$(p50 http://127.0.0.1:18182/api/auth/verify_auth)
guarded=$(p50 -H "Cookie: $cookie" http://127.0.0.1:18183/api/auth/verify_auth)
echo "p50 through nginx, no auth_request:     $plain"
echo "p50 through nginx, auth_request latch:  $guarded"
python3 - "$plain" "$guarded" <<'PY'
import sys
def us(v):
    for unit, f in (("us", 1), ("ms", 1000), ("s", 1_000_000)):
        if v.endswith(unit) and not (unit == "s" and v.endswith(("us", "ms"))):
            return float(v[: -len(unit)]) * f
    raise ValueError(v)
print(f"added by auth_request at p50: {(us(sys.argv[2]) - us(sys.argv[1])) / 1000:.3f} ms")
PY
