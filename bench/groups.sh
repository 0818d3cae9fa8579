#!/usr/bin/env bash
# Groups on the hot path: `/api/me` and `/auth/verify` req/s for a user in 20 groups (names of
# 20 characters) beside a user in none, on one server, alternating A B A B so both see the same
# noise. Target (docs/benchmarks.md): the 20-group user at >= 0.95 of the other.
#
#   cargo build --release && bench/groups.sh [target/release/portcullis]
#
# SQLite, loopback; BENCH_DURATION (5s) per load, ROUNDS (3) alternations. Prints numbers only.
set -euo pipefail
binary="${1:-target/release/portcullis}"
command -v wrk >/dev/null || { echo "groups: wrk is required (apt-get install wrk)" >&2; exit 1; }
duration="${BENCH_DURATION:-5s}"
rounds="${ROUNDS:-3}"
port="${BENCH_PORT:-18283}"
url="http://127.0.0.1:$port"
password="violet tractor sings loudly"
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
export DATABASE_URL="sqlite://$work/bench.db" PORTCULLIS_BIND="127.0.0.1:$port" PORTCULLIS_LOG=warn
export PORTCULLIS_JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -d '\n')"
export PORTCULLIS_MFA_REQUIRED=off
printf '[[rule]]\nhost = "app.example.test"\nallow = ["user", "group:group-number-00020"]\n' >"$work/rules.toml"
export PORTCULLIS_ACCESS_RULES="$work/rules.toml"
for name in none many; do
  echo "$password" | "$binary" user create --username "$name" --email "$name@example.com" --password-stdin >/dev/null
done
for n in $(seq -w 1 20); do
  "$binary" group create "group-number-000$n" >/dev/null
  "$binary" group add "group-number-000$n" many >/dev/null
done
"$binary" serve 2>>"$work/server.log" &
server=$!
until curl -sf "$url/healthz" >/dev/null; do sleep 0.05; done
token() {
  curl -sf -H 'content-type: application/json' -d "{\"username\":\"$1\",\"password\":\"$password\"}" "$url/api/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
none=$(token none)
many=$(token many)
echo "token bytes: none ${#none}, 20 groups ${#many}"
verify_headers=(-H "X-Forwarded-Host: app.example.test" -H "X-Forwarded-Uri: /" -H "X-Forwarded-Proto: http" -H "X-Forwarded-Method: GET")
wrk -t2 -c32 -d1s -H "Authorization: Bearer $many" "$url/api/me" >/dev/null # warm up
measure() { # LABEL TOKEN PATH [headers…]: every answer must be a 200
  local label=$1 token=$2 path=$3
  shift 3
  wrk -t2 -c32 -d"$duration" -H "Authorization: Bearer $token" "$@" "$url$path" >"$work/out"
  if grep -q "Non-2xx" "$work/out"; then echo "groups: refused answers on $path" >&2; cat "$work/out" >&2; exit 1; fi
  echo "$label $(awk '/Requests\/sec/ {print $2}' "$work/out")"
}
for round in $(seq "$rounds"); do
  measure me-none "$none" /api/me
  measure me-20 "$many" /api/me
  measure verify-none "$none" /auth/verify "${verify_headers[@]}"
  measure verify-20 "$many" /auth/verify "${verify_headers[@]}"
done | awk '
  { rps[$1] += $2; n[$1]++; print "  " $1 " " $2 " req/s" }
  END {
    printf "| | no group | 20 groups | ratio |\n|---|---|---|---|\n"
    printf "| /api/me req/s | %.0f | %.0f | %.2f |\n", rps["me-none"]/n["me-none"], rps["me-20"]/n["me-20"], rps["me-20"]/rps["me-none"]
    printf "| /auth/verify req/s | %.0f | %.0f | %.2f |\n", rps["verify-none"]/n["verify-none"], rps["verify-20"]/n["verify-20"], rps["verify-20"]/rps["verify-none"]
  }'
