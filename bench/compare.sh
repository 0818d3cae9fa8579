#!/usr/bin/env bash
# Two builds side by side on the hot path: `/api/me` (Bearer) and `/dashboard` (cookie),
# req/s with wrk, alternating A B A B so both see the same noise.
#
#   bench/compare.sh OLD_BINARY NEW_BINARY        # e.g. a release build of main and of a branch
#
# SQLite, loopback; BENCH_DURATION (5s) per load, ROUNDS (3) alternations.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }
command -v wrk >/dev/null || { echo "compare: wrk is required (apt-get install wrk)" >&2; exit 1; }
duration="${BENCH_DURATION:-5s}"
rounds="${ROUNDS:-3}"
port="${BENCH_PORT:-18282}"
url="http://127.0.0.1:$port"
password="violet tractor sings loudly"
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

run_one() { # BINARY LABEL -> prints "LABEL me_rps dashboard_rps"
  local binary=$1 label=$2 db="$work/$2.db"
  export DATABASE_URL="sqlite://$db" PORTCULLIS_BIND="127.0.0.1:$port" PORTCULLIS_LOG=warn
  export PORTCULLIS_JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -d '\n')"
  export PORTCULLIS_MFA_REQUIRED=off  # bench admins sign in with a password alone
  [ -f "$db" ] || echo "$password" | "$binary" user create --username bench --email bench@example.com --password-stdin >/dev/null
  "$binary" serve 2>>"$work/server.log" &
  server=$!
  until curl -sf "$url/healthz" >/dev/null; do sleep 0.05; done
  local token cookie
  token=$(curl -sf -H 'content-type: application/json' -d "{\"username\":\"bench\",\"password\":\"$password\"}" "$url/api/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  # The access token is the same JWT as the page cookie.
  cookie="portcullis=$token"
  wrk -t2 -c32 -d1s -H "Authorization: Bearer $token" "$url/api/me" >/dev/null # warm up
  local me dash
  wrk -t2 -c32 -d"$duration" -H "Authorization: Bearer $token" "$url/api/me" >"$work/me.out"
  wrk -t2 -c32 -d"$duration" -H "Cookie: $cookie" "$url/dashboard" >"$work/dash.out"
  if grep -q "Non-2xx" "$work/me.out" "$work/dash.out"; then echo "compare: refused requests" >&2; cat "$work"/*.out >&2; exit 1; fi
  me=$(awk '/Requests\/sec/ {print $2}' "$work/me.out")
  dash=$(awk '/Requests\/sec/ {print $2}' "$work/dash.out")
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  echo "$label $me $dash"
}

for round in $(seq "$rounds"); do
  run_one "$1" old
  run_one "$2" new
done | awk '
  { me[$1] += $2; dash[$1] += $3; n[$1]++ ; print "  round: " $1 "  /api/me " $2 " req/s  /dashboard " $3 " req/s" }
  END {
    printf "| build | /api/me req/s | /dashboard req/s |\n|---|---|---|\n"
    printf "| old | %.0f | %.0f |\n", me["old"] / n["old"], dash["old"] / n["old"]
    printf "| new | %.0f | %.0f |\n", me["new"] / n["new"], dash["new"] / n["new"]
    printf "new / old: /api/me %.2f, /dashboard %.2f\n", me["new"] / me["old"], dash["new"] / dash["old"]
  }'
