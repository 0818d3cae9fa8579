#!/usr/bin/env bash
# Exporting users at scale: seeds USERS (default 1,000,000) users into a fresh SQLite database
# (as admin_list.sh does), then prints the time and peak memory of
#   1. `portcullis user export` (the whole process's maximum resident set), and
#   2. `GET /admin/users.csv` (the server's peak resident set before and after the download).
# Usage: bench/export.sh
set -euo pipefail
cd "$(dirname "$0")/.."
users="${USERS:-1000000}"
port="${BENCH_PORT:-18183}"

cargo build --release --quiet
binary="$PWD/target/release/portcullis"
work="$(mktemp -d)"
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
export PORTCULLIS_BIND="127.0.0.1:$port" PORTCULLIS_LOG=warn PORTCULLIS_MFA_REQUIRED=off
export PORTCULLIS_JWT_SECRET="bench-secret-$(head -c 32 /dev/urandom | base64 | tr -d '/+=')"
export DATABASE_URL="sqlite://$work/bench.db"

"$binary" migrate >/dev/null
echo "violet tractor sings loudly" | "$binary" user create --username admin --email admin@example.com --role admin --password-stdin >/dev/null
python3 bench/list_latency.py seed "sqlite:$work/bench.db" "$users"

/usr/bin/time -f "%M %e" -o "$work/cli.time" "$binary" user export >"$work/cli.csv" 2>/dev/null
read -r cli_kb cli_s <"$work/cli.time"
echo "portcullis user export: $(($(wc -l <"$work/cli.csv") - 1)) rows, $(du -m "$work/cli.csv" | cut -f1) MB in ${cli_s} s; peak memory $((cli_kb / 1024)) MiB"

"$binary" serve 2>"$work/server.log" &
server=$!
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.05; done
jar="$work/cookies"
token=$(curl -s -c "$jar" "http://127.0.0.1:$port/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)
curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "username=admin" \
  --data-urlencode "password=violet tractor sings loudly" --data-urlencode "csrf_token=$token" "http://127.0.0.1:$port/login"
curl -s -b "$jar" -o /dev/null "http://127.0.0.1:$port/admin/users"  # warm up
before=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
start=$(date +%s.%N)
curl -s -b "$jar" -o "$work/web.csv" "http://127.0.0.1:$port/admin/users.csv"
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
after=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
echo "GET /admin/users.csv: $(($(wc -l <"$work/web.csv") - 1)) rows in ${elapsed} s; server peak memory $((before / 1024)) MiB before, $((after / 1024)) MiB after"
