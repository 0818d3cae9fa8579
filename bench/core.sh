#!/usr/bin/env bash
# Core benchmark: start-up time, login latency, and wrk throughput of /healthz, /api/me
# (Bearer) and /dashboard (cookie) measured in one run, so the ratios mean something on a
# shared machine. Usage: bench/core.sh [sqlite|postgres]   (postgres needs BENCH_POSTGRES_URL)
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
duration="${BENCH_DURATION:-10s}"
connections="${BENCH_CONNECTIONS:-32}"
port="${BENCH_PORT:-18181}"
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }

cargo build --release --quiet
binary="$PWD/target/release/portcullis"
work="$(mktemp -d)"
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"

export PORTCULLIS_BIND="127.0.0.1:$port" PORTCULLIS_LOG="${PORTCULLIS_LOG:-info}"
export PORTCULLIS_JWT_SECRET="bench-secret-$(head -c 32 /dev/urandom | base64 | tr -d '/+=')"
if [ "$backend" = postgres ]; then
  base="${BENCH_POSTGRES_URL:?set BENCH_POSTGRES_URL, e.g. postgres://postgres@127.0.0.1:5432/postgres}"
  name="portcullis_bench_$$"
  psql -q -d "$base" -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name"
  export DATABASE_URL="${base%/*}/$name"
else
  export DATABASE_URL="sqlite://$work/bench.db"
fi

"$binary" migrate >/dev/null
echo "violet tractor sings loudly" | "$binary" user create --username bench --email bench@example.com --password-stdin >/dev/null

start=$(date +%s%N)
"$binary" serve 2>"$work/server.log" &
server=$!
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.005; done
startup_ms=$(( ($(date +%s%N) - start) / 1000000 ))

url="http://127.0.0.1:$port"
login_body='{"username":"bench","password":"violet tractor sings loudly"}'
latencies=()
for _ in $(seq 1 21); do
  latencies+=("$(curl -s -o /dev/null -w '%{time_total}' -H 'content-type: application/json' -d "$login_body" "$url/api/token")")
done
login_ms=$(printf '%s\n' "${latencies[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]*1000}')
token=$(curl -s -H 'content-type: application/json' -d "$login_body" "$url/api/token" | sed 's/.*"token":"\([^"]*\)".*/\1/')

jar="$work/jar"
csrf=$(curl -s -c "$jar" "$url/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p')
curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "username=bench" \
  --data-urlencode "password=violet tractor sings loudly" --data-urlencode "csrf_token=$csrf" "$url/login"
cookie=$(awk '$6 == "portcullis" {print $7}' "$jar")
[ "$(curl -s -o /dev/null -w '%{http_code}' -b "portcullis=$cookie" "$url/dashboard")" = 200 ] || { echo "cookie login failed" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$url/api/me")" = 200 ] || { echo "token login failed" >&2; exit 1; }

run() { # name, then wrk arguments; prints "name rps p50 p99"
  local name=$1; shift
  wrk -t2 -c"$connections" -d"$duration" --latency "$@" > "$work/wrk.out"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.out")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.out")
  grep -q 'Non-2xx' "$work/wrk.out" && { echo "$name: non-2xx answers:" >&2; cat "$work/wrk.out" >&2; exit 1; }
  printf '| %-28s | %10s | %8s | %8s |\n' "$name" "$rps" "$p50" "$p99"
}

echo
echo "backend: $backend; $(nproc) cores; wrk -t2 -c$connections -d$duration; server and wrk share the machine"
echo "start-up to first answered request: ${startup_ms} ms"
echo "one login (POST /api/token, argon2id 19 MiB t=2), median of 21: ${login_ms} ms"
echo
printf '| %-28s | %10s | %8s | %8s |\n' "endpoint" "requests/s" "p50" "p99"
printf '|%s|%s|%s|%s|\n' "------------------------------" "------------" "----------" "----------"
run "GET /healthz" "$url/healthz"
run "GET /api/me (Bearer)" -H "Authorization: Bearer $token" "$url/api/me"
run "GET /dashboard (cookie)" -H "Cookie: portcullis=$cookie" "$url/dashboard"
# The revocation check with a big list: 100,000 sessions ended in the last minutes.
revoked_sql="INSERT INTO revoked_sessions (sid, revoked_at) SELECT 'bench-' || n, CURRENT_TIMESTAMP FROM"
if [ "$backend" = postgres ]; then
  psql -q -d "$DATABASE_URL" -c "$revoked_sql generate_series(1, 100000) AS n"
else
  python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n<100000) $revoked_sql s\"); c.commit()" "$work/bench.db"
fi
sleep 2
run "GET /api/me, 100k revoked" -H "Authorization: Bearer $token" "$url/api/me"
if [ "$backend" = postgres ]; then kill "$server"; wait "$server" 2>/dev/null || true; psql -q -d "$base" -c "DROP DATABASE IF EXISTS $name"; fi
