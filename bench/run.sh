#!/usr/bin/env bash
# The benchmark: builds release, starts Portcullis on SQLite and then on PostgreSQL, loads it
# with wrk and prints one table per backend and the targets. Every ratio compares numbers
# taken in the same run, seconds apart, because the machine is shared and noisy.
#
#   bench/run.sh                 # both backends (PostgreSQL at BENCH_POSTGRES_URL)
#   bench/run.sh sqlite          # one backend
#
# BENCH_POSTGRES_URL defaults to postgres://postgres@127.0.0.1:5432/postgres; a scratch
# database is created next to it and dropped afterwards. BENCH_DURATION (10s, in seconds) is per load.
set -euo pipefail
cd "$(dirname "$0")/.."
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(sqlite postgres)
duration="${BENCH_DURATION:-10s}"
port="${BENCH_PORT:-18181}"
url="http://127.0.0.1:$port"
pg_base="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
password="violet tractor sings loudly"
command -v wrk >/dev/null || { echo "bench: wrk is required (apt-get install wrk)" >&2; exit 1; }

cargo build --release --quiet
binary="$PWD/target/release/portcullis"
scripts="$PWD/bench"
work="$(mktemp -d)"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  [ -n "${pg_scratch:-}" ] && psql -q -d "$pg_base" -c "DROP DATABASE IF EXISTS $pg_scratch" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# "1.23ms" / "850.00us" / "1.02s" -> milliseconds
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
rss_mib() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status"; }

# wrk NAME CONNECTIONS ARGS... -> sets RPS P50 P99 (ms) NON2XX; prints a table row
load() {
  local name=$1 connections=$2; shift 2
  wrk -t2 -c"$connections" -d"$duration" --latency "$@" > "$work/wrk.out"
  RPS=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  P50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$work/wrk.out")")
  P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$work/wrk.out")")
  NON2XX=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out"); NON2XX=${NON2XX:-0}
  local errors; errors=$(awk '/Socket errors/' "$work/wrk.out")
  [ -z "$errors" ] && { [ "$NON2XX" = 0 ] || [ -n "${REPORT_FAILURES:-}" ]; } ||
    { echo "bench: $name had failures:" >&2; cat "$work/wrk.out" >&2; exit 1; }
  [ "$NON2XX" = 0 ] || name="$name ($NON2XX refused)"
  printf '| %-40s | %5s | %10s | %8s | %8s |\n' "$name" "$connections" "$RPS" "$P50" "$P99"
}

# Starts the server; STARTUP_MS = time to its first answered request.
start_server() {
  local started; started=$(date +%s%N)
  "$binary" serve 2>>"$work/server.log" &
  server=$!
  until curl -sf "$url/healthz" >/dev/null; do
    kill -0 "$server" 2>/dev/null || { echo "bench: the server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
    sleep 0.005
  done
  STARTUP_MS=$(( ($(date +%s%N) - started) / 1000000 ))
}

bench_backend() {
  local backend=$1
  export PORTCULLIS_BIND="127.0.0.1:$port" PORTCULLIS_LOG="${PORTCULLIS_LOG:-info}"
  export PORTCULLIS_JWT_SECRET="bench-secret-$(head -c 32 /dev/urandom | base64 | tr -d '/+=')"
  export PORTCULLIS_MFA_REQUIRED=off  # bench admins sign in with a password alone
  # The load signs in thousands of times from one address; the throttle would (rightly) stop it.
  export PORTCULLIS_LOGIN_ACCOUNT_ATTEMPTS=1000 PORTCULLIS_LOGIN_ADDRESS_ATTEMPTS=100000
  if [ "$backend" = postgres ]; then
    pg_isready -q -d "$pg_base" || { echo "bench: PostgreSQL is not reachable at $pg_base" >&2; exit 1; }
    pg_scratch="portcullis_bench_$$"
    psql -q -d "$pg_base" -c "DROP DATABASE IF EXISTS $pg_scratch" -c "CREATE DATABASE $pg_scratch"
    export DATABASE_URL="${pg_base%/*}/$pg_scratch"
  else
    export DATABASE_URL="sqlite://$work/bench.db"
  fi
  "$binary" migrate >/dev/null
  : > "$work/server.log"
  echo "$password" | "$binary" user create --username bench --email bench@example.com --password-stdin >/dev/null
  start_server

  local login_body="{\"username\":\"bench\",\"password\":\"$password\"}" token cookie csrf
  token=$(curl -s -H 'content-type: application/json' -d "$login_body" "$url/api/token" | sed 's/.*"token":"\([^"]*\)".*/\1/')
  csrf=$(curl -s -c "$work/jar" "$url/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p')
  curl -s -b "$work/jar" -c "$work/jar" -o /dev/null --data-urlencode "username=bench" \
    --data-urlencode "password=$password" --data-urlencode "csrf_token=$csrf" "$url/login"
  cookie=$(awk '$6 == "portcullis" {print $7}' "$work/jar")
  [ "$(curl -s -o /dev/null -w '%{http_code}' -b "portcullis=$cookie" "$url/dashboard")" = 200 ] || { echo "bench: cookie sign-in failed" >&2; exit 1; }
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$url/api/me")" = 200 ] || { echo "bench: token sign-in failed" >&2; exit 1; }
  local bearer=(-H "Authorization: Bearer $token")
  local rss_idle; rss_idle=$(rss_mib)

  echo
  echo "## $backend — $(nproc) cores, wrk -t2 -d$duration, server and wrk share the machine"
  echo
  echo "Start-up to the first answered request: $STARTUP_MS ms."
  echo
  printf '| %-40s | %5s | %10s | %8s | %8s |\n' "load" "conns" "requests/s" "p50 ms" "p99 ms"
  printf '|%s|%s|%s|%s|%s|\n' "------------------------------------------" "-------" "------------" "----------" "----------"
  # Alternating rounds, so a noisy neighbour hurts all three alike; ratios use the sums.
  local healthz=0 me=0 dashboard=0 round
  for round in 1 2; do
    load "GET /healthz (round $round)" 32 "$url/healthz"; healthz=$(awk -v a="$healthz" -v b="$RPS" 'BEGIN { print a + b }')
    load "GET /api/me (Bearer) (round $round)" 32 "${bearer[@]}" "$url/api/me"; me=$(awk -v a="$me" -v b="$RPS" 'BEGIN { print a + b }')
    load "GET /dashboard (cookie) (round $round)" 32 -H "Cookie: portcullis=$cookie" "$url/dashboard"; dashboard=$(awk -v a="$dashboard" -v b="$RPS" 'BEGIN { print a + b }')
  done

  # /api/me at 256 connections, sampling the resident memory while it runs. The hashing threads
  # free their working memory after 10 s without sign-ins; this load has none by design.
  local rss_peak=0
  ( while kill -0 "$server" 2>/dev/null; do rss_mib; echo; sleep 0.2; done ) > "$work/rss.samples" &
  local sampler=$!
  load "GET /api/me (memory under load)" 256 "${bearer[@]}" "$url/api/me"
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
  rss_peak=$(sort -n "$work/rss.samples" | tail -1)

  # Latency: a steady probe (4 connections, 2 ms apart), alone and then while 100 clients sign
  # in without pause. Also shown: the same with the probe flat out (it then competes with the
  # server for the cores, so its p99 mostly measures that competition).
  load "GET /api/me, steady probe, alone" 4 -s "$scripts/paced.lua" "${bearer[@]}" "$url/api/me"; local idle_p99=$P99
  load "GET /api/me, flat out, alone" 4 "${bearer[@]}" "$url/api/me"; local idle_flat_p99=$P99

  # /api/me again while 100 clients sign in without pause.
  wrk -t1 -c100 -d"$(( ${duration%s} * 2 + 2 ))s" -s "$scripts/login.lua" "$url/api/token" > "$work/logins-bg.out" &
  local logins_bg=$!
  sleep 1
  load "GET /api/me, steady probe, 100 signing in" 4 -s "$scripts/paced.lua" "${bearer[@]}" "$url/api/me"; local busy_p99=$P99
  # Flat out on a 2-core machine, this probe can starve PostgreSQL's processes: the revoked-list
  # refresh then overruns and guarded requests fail closed (503). Counted, not hidden.
  REPORT_FAILURES=1 load "GET /api/me, flat out, 100 signing in" 4 "${bearer[@]}" "$url/api/me"; local busy_flat_p99=$P99
  wait "$logins_bg"

  # Sign-ins per second against the argon2 bound: one hash's time measured just before and just
  # after the load, and the faster of the two used (the higher, stricter bound).
  hash_ms() { "$binary" hash-speed --samples 20 > "$work/hash-speed.out"; awk '/one argon2id hash/ {print $4}' "$work/hash-speed.out"; }
  local hash_before hash_after hash_ms bound together_ms together_bound
  hash_before=$(hash_ms)
  # Also timed with every hashing thread busy at once (informational: the issue's bound is the
  # one-hash one); the threads then share caches and memory bandwidth.
  together_ms=$(awk '/hashing at once/ {print $6}' "$work/hash-speed.out")
  # 8 connections per core keep both hashing threads busy (the rest of a sign-in overlaps).
  load "POST /api/token (sign-ins)" "$(( $(nproc) * 8 ))" -s "$scripts/login.lua" "$url/api/token"; local logins=$RPS
  hash_after=$(hash_ms)
  hash_ms=$(awk -v a="$hash_before" -v b="$hash_after" 'BEGIN { print (a < b) ? a : b }')
  bound=$(awk -v c="$(nproc)" -v t="$hash_ms" 'BEGIN { printf "%.1f", c * 1000 / t }')
  together_bound=$(awk -v c="$(nproc)" -v t="$together_ms" 'BEGIN { printf "%.1f", c * 1000 / t }')
  echo "(one argon2id hash: $hash_before ms before the sign-in load, $hash_after ms after; $together_ms ms each with $(nproc) at once)"

  # The revocation check with 100,000 sessions ended in the last minutes.
  local revoked_sql="INSERT INTO revoked_sessions (sid, revoked_at) SELECT 'bench-' || n, CURRENT_TIMESTAMP FROM"
  if [ "$backend" = postgres ]; then
    psql -q -d "$DATABASE_URL" -c "$revoked_sql generate_series(1, 100000) AS n"
  else
    python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM s WHERE n<100000) $revoked_sql s\"); c.commit()" "$work/bench.db"
  fi
  sleep 2
  load "GET /api/me, 100,000 sessions revoked" 32 "${bearer[@]}" "$url/api/me"
  sleep 11
  local rss_after; rss_after=$(rss_mib)
  local slow; slow=$(grep -c "list was slow" "$work/server.log" || true)
  echo "(revoked-list refreshes slower than 250 ms during the run: $slow)"

  echo
  echo "| target ($backend) | measured | goal | |"
  echo "|---|---|---|---|"
  verdict() { awk -v m="$1" -v g="$2" -v dir="$3" 'BEGIN { ok = (dir == "min") ? m >= g : m <= g; print ok ? "met" : "NOT MET" }'; }
  local r
  r=$(ratio "$me" "$healthz"); echo "| /api/me ÷ /healthz throughput (both rounds) | $r % | ≥ 85 % | $(verdict "$r" 85 min) |"
  r=$(ratio "$dashboard" "$healthz"); echo "| /dashboard ÷ /healthz throughput (both rounds) | $r % | ≥ 70 % | $(verdict "$r" 70 min) |"
  r=$(ratio "$logins" "$bound"); echo "| sign-ins/s ÷ argon2 bound ($(nproc) cores ÷ $hash_ms ms = $bound/s) | $r % ($logins/s) | ≥ 90 % | $(verdict "$r" 90 min) |"
  r=$(ratio "$logins" "$together_bound"); echo "| (for comparison, ÷ the bound with $(nproc) hashing at once, $together_bound/s: $r %) | | | |"
  r=$(awk -v a="$busy_p99" -v b="$idle_p99" 'BEGIN { printf "%.1f", a / b }')
  echo "| /api/me p99 during sign-ins ÷ idle p99 (steady probe) | $r× ($busy_p99 / $idle_p99 ms) | ≤ 3× | $(verdict "$r" 3 max) |"
  r=$(awk -v a="$busy_flat_p99" -v b="$idle_flat_p99" 'BEGIN { printf "%.1f", a / b }')
  echo "| (for comparison, the probe flat out: $r×, $busy_flat_p99 / $idle_flat_p99 ms) | | | |"
  echo "| resident memory, just started (2 sign-ins: both hash buffers held) | $rss_idle MiB | ≤ 64 MiB | $(verdict "$rss_idle" 64 max) |"
  echo "| resident memory, peak at 256 connections on /api/me | $rss_peak MiB | ≤ 64 MiB | $(verdict "$rss_peak" 64 max) |"
  echo "| resident memory, idle after all the above | $rss_after MiB | ≤ 64 MiB | $(verdict "$rss_after" 64 max) |"

  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  if [ "$backend" = postgres ]; then psql -q -d "$pg_base" -c "DROP DATABASE IF EXISTS $pg_scratch"; pg_scratch=""; fi
}

for backend in "${backends[@]}"; do
  case "$backend" in
    sqlite|postgres) bench_backend "$backend" ;;
    *) echo "usage: bench/run.sh [sqlite|postgres]..." >&2; exit 2 ;;
  esac
done
