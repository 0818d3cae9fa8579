#!/usr/bin/env bash
# The OpenID Connect provider beside npm's oidc-provider (OpenID Certified; its in-memory
# adapter) on this machine, in one run: client_credentials token requests/s (target >= 10x),
# userinfo requests/s (target >= 20x), and a signed-in user's full authorize -> code -> token
# exchange on Portcullis, p50 and p95 (target p50 <= 5 ms on SQLite).
#
#   cargo build --release && npm ci --prefix tests/oidc-clients && bench/oidc.sh [target/release/portcullis]
#
# SQLite, loopback, wrk with 2 threads and 32 connections, BENCH_DURATION (5s) per load.
set -euo pipefail
binary="${1:-target/release/portcullis}"
command -v wrk >/dev/null || { echo "oidc: wrk is required (apt-get install wrk)" >&2; exit 1; }
[ -d tests/oidc-clients/node_modules/oidc-provider ] || { echo "oidc: run npm ci --prefix tests/oidc-clients" >&2; exit 1; }
duration="${BENCH_DURATION:-5s}"
port="${BENCH_PORT:-18291}"
peer_port="${PEER_PORT:-18292}"
url="http://127.0.0.1:$port"
peer="http://127.0.0.1:$peer_port"
password="violet tractor sings loudly"
redirect="http://127.0.0.1:9/callback"
work="$(mktemp -d)"
server="" peer_pid=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null; rm -rf "$work"' EXIT
export DATABASE_URL="sqlite://$work/bench.db" PORTCULLIS_BIND="127.0.0.1:$port" PORTCULLIS_LOG=warn
export PORTCULLIS_PUBLIC_URL="$url"
export PORTCULLIS_JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -d '\n')"
export PORTCULLIS_MFA_REQUIRED=off
echo "$password" | "$binary" user create --username alice --email alice@example.com --password-stdin >/dev/null
app=$("$binary" client create --name Bench --redirect-uri "$redirect" --json)
client_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$app")
secret=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$app")
"$binary" serve 2>>"$work/server.log" &
server=$!
until curl -sf "$url/healthz" >/dev/null; do sleep 0.05; done
flow=$(python3 bench/oidc_flow.py "$url" alice "$password" "$client_id" "$secret" "$redirect" "${FLOW_ROUNDS:-500}")
access=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["access_token"])' "$flow")

node bench/oidc_peer.mjs "$peer_port" >"$work/peer.out" 2>"$work/peer.log" &
peer_pid=$!
until grep -q '^{' "$work/peer.out" 2>/dev/null; do
  kill -0 "$peer_pid" 2>/dev/null || { cat "$work/peer.log" >&2; exit 1; }
  sleep 0.1
done
peer_json=$(grep '^{' "$work/peer.out" | tail -1)
peer_secret=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$peer_json")
peer_access=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["access_token"])' "$peer_json")

post_script() { # $1 = basic credentials
  cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf '%s' "$1" | base64 -w0)"
LUA
}
rate() { # wrk's requests/s, refusing a run with errors or non-2xx answers
  local out
  out=$(wrk -t2 -c32 -d"$duration" "$@")
  if grep -q "Non-2xx" <<<"$out"; then echo "oidc: non-2xx answers in: wrk $*" >&2; echo "$out" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
# Userinfo first: oidc-provider's in-memory adapter is a bounded LRU, and the client
# credentials load's tokens would push the user's access token out of it.
ours_ui=$(rate -H "Authorization: Bearer $access" "$url/oauth2/userinfo")
peer_ui=$(rate -H "Authorization: Bearer $peer_access" "$peer/me")
post_script "$client_id:$secret"
ours_cc=$(rate -s "$work/post.lua" "$url/oauth2/token")
post_script "bench:$peer_secret"
peer_cc=$(rate -s "$work/post.lua" "$peer/token")
ratio() { python3 -c "print(f'{float(\"$1\") / float(\"$2\"):.1f}')"; }
echo "client_credentials token requests/s: portcullis $ours_cc, oidc-provider $peer_cc, ratio $(ratio "$ours_cc" "$peer_cc")x (target >= 10x)"
echo "userinfo requests/s: portcullis $ours_ui, oidc-provider $peer_ui, ratio $(ratio "$ours_ui" "$peer_ui")x (target >= 20x)"
python3 - "$flow" <<'PY'
import json, sys
f = json.loads(sys.argv[1])
print(f"authorize -> code -> token (signed in, SQLite): p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms over {f['rounds']} rounds (target p50 <= 5 ms)")
PY
