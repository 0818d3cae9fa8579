#!/usr/bin/env bash
# Forward-auth and token signing, measured in one run (the machine is shared and noisy: only
# ratios of numbers taken here, seconds apart, mean anything):
#   1. GET /auth/verify (a signed-in browser's cookie) as a share of GET /healthz  — target ≥ 85 %
#   2. requests/s through nginx to an upstream, with and without the auth_request hop
#   3. GET /api/me with an EdDSA token and with an HS256 one
# Needs wrk and nginx (apt-get install wrk nginx). BENCH_DURATION (default 5s) per load; each
# load runs BENCH_ROUNDS (3) times, interleaved with the others, and the best round counts.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${BENCH_DURATION:-5s}"
rounds="${BENCH_ROUNDS:-3}"
command -v wrk >/dev/null || { echo "bench: wrk is required (apt-get install wrk)" >&2; exit 1; }
[ -x /usr/sbin/nginx ] || { echo "bench: nginx is required (apt-get install nginx)" >&2; exit 1; }
cargo build --release --quiet
binary="$PWD/target/release/portcullis"
work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
proxy=$(free_port); portcullis=$(free_port); hs256_port=$(free_port); upstream=$(free_port)
password="violet tractor sings loudly"

# wrk KEY ARGS... -> the best req/s so far for KEY in best[KEY]
declare -A best
load() {
  local key=$1; shift
  wrk -t2 -c32 -d"$duration" "$@" > "$work/wrk.out"
  local rps; rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out")
  [ -z "$non2xx" ] || { echo "bench: $key got $non2xx non-2xx answers:" >&2; cat "$work/wrk.out" >&2; exit 1; }
  best[$key]=$(awk -v a="${best[$key]:-0}" -v b="$rps" 'BEGIN { print (b > a ? b : a) }')
}

start_portcullis() { # ALG PORT
  export DATABASE_URL="sqlite://$work/bench-$1.db" PORTCULLIS_BIND="127.0.0.1:$2" PORTCULLIS_LOG=warn \
    PORTCULLIS_PUBLIC_URL="http://auth.portcullis.test:$proxy" PORTCULLIS_COOKIE_DOMAIN=portcullis.test \
    PORTCULLIS_MFA_REQUIRED=off PORTCULLIS_JWT_ALG="$1" PORTCULLIS_TRUSTED_PROXIES=127.0.0.1
  echo "$password" | "$binary" user create --username bench --email bench@example.com --password-stdin >/dev/null
  "$binary" serve 2>>"$work/server.log" &
  server=$!; pids+=("$server")
  until curl -sf "http://127.0.0.1:$2/healthz" >/dev/null; do sleep 0.1; done
  token=$(curl -sf -H 'content-type: application/json' -d "{\"username\":\"bench\",\"password\":\"$password\"}" \
    "http://127.0.0.1:$2/api/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
}

# nginx: the guarded site (auth_request), the same site unguarded, and a fast upstream.
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<CONF
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi; uwsgi_temp_path $work/nginx/uwsgi; scgi_temp_path $work/nginx/scgi;
  upstream portcullis { server 127.0.0.1:$portcullis; keepalive 32; }
  upstream app { server 127.0.0.1:$upstream; keepalive 32; }
  server { listen 127.0.0.1:$upstream; location / { return 200 "the app\n"; } }
  server {
    listen 127.0.0.1:$proxy; server_name plain.portcullis.test;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$proxy; server_name app.portcullis.test;
    location = /portcullis-verify {
      internal;
      proxy_pass http://portcullis/auth/verify?answer=401;
      proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_pass_request_body off; proxy_set_header Content-Length "";
      proxy_set_header X-Original-URL \$scheme://\$http_host\$request_uri;
    }
    location / {
      auth_request /portcullis-verify;
      auth_request_set \$portcullis_user \$upstream_http_remote_user;
      proxy_set_header Remote-User \$portcullis_user;
      proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
    }
  }
}
CONF
/usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>>"$work/nginx/error.log" &
pids+=("$!")
until curl -sf -H "Host: plain.portcullis.test" "http://127.0.0.1:$proxy/" >/dev/null; do sleep 0.1; done

start_portcullis EdDSA "$portcullis"; eddsa_token=$token
start_portcullis HS256 "$hs256_port"; hs256_token=$token
for _ in $(seq "$rounds"); do
  load healthz "http://127.0.0.1:$portcullis/healthz"
  load verify -H "Cookie: portcullis=$eddsa_token" -H "X-Forwarded-Host: app.portcullis.test" -H "X-Forwarded-Uri: /page" \
    "http://127.0.0.1:$portcullis/auth/verify"
  load me_eddsa -H "Authorization: Bearer $eddsa_token" "http://127.0.0.1:$portcullis/api/me"
  load me_hs256 -H "Authorization: Bearer $hs256_token" "http://127.0.0.1:$hs256_port/api/me"
  load plain -H "Host: plain.portcullis.test" "http://127.0.0.1:$proxy/"
  load guarded -H "Host: app.portcullis.test" -H "Cookie: portcullis=$eddsa_token" "http://127.0.0.1:$proxy/"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
row() { printf '| %-52s | %10.0f |\n' "$1" "${best[$2]}"; }
echo "| load (32 connections, best of $rounds × $duration)              |      req/s |"
echo "|------------------------------------------------------|-----------:|"
row "GET /healthz" healthz
row "GET /auth/verify (a signed-in browser's cookie)" verify
row "GET /api/me, EdDSA token" me_eddsa
row "GET /api/me, HS256 token" me_hs256
row "nginx → upstream" plain
row "nginx → auth_request /auth/verify → upstream" guarded
echo
echo "/auth/verify req/s as a share of /healthz: $(ratio "${best[verify]}" "${best[healthz]}") % (target ≥ 85 %)"
echo "through nginx, with the auth_request hop as a share of without: $(ratio "${best[guarded]}" "${best[plain]}") %"
echo "/api/me with EdDSA as a share of HS256: $(ratio "${best[me_eddsa]}" "${best[me_hs256]}") %"
if grep -q panicked "$work/server.log"; then echo "bench: the server panicked" >&2; exit 1; fi
