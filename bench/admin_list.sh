#!/usr/bin/env bash
# Admin user list at scale: seeds USERS (default 1,000,000) users straight into a fresh
# database with one precomputed argon2 hash, then prints p50/p95 page times for typical
# searches, filters, sorts and deep pages.  Usage: bench/admin_list.sh [sqlite|postgres]
# (postgres needs BENCH_POSTGRES_URL, e.g. postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
users="${USERS:-1000000}"
port="${BENCH_PORT:-18182}"

cargo build --release --quiet
binary="$PWD/target/release/portcullis"
work="$(mktemp -d)"
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

export PORTCULLIS_BIND="127.0.0.1:$port" PORTCULLIS_LOG=warn
export PORTCULLIS_JWT_SECRET="bench-secret-$(head -c 32 /dev/urandom | base64 | tr -d '/+=')"
export PORTCULLIS_MFA_REQUIRED=off  # bench admins sign in with a password alone
export PORTCULLIS_HOUSEKEEPING_INTERVAL=1s
if [ "$backend" = postgres ]; then
  base="${BENCH_POSTGRES_URL:?set BENCH_POSTGRES_URL}"
  name="portcullis_bench_list"
  psql -q -d "$base" -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name"
  export DATABASE_URL="${base%/*}/$name"
  db="postgres:$DATABASE_URL"
else
  export DATABASE_URL="sqlite://$work/bench.db"
  db="sqlite:$work/bench.db"
fi

"$binary" migrate >/dev/null
echo "violet tractor sings loudly" | "$binary" user create --username admin --email admin@example.com --role admin --password-stdin >/dev/null
start=$(date +%s)
python3 bench/list_latency.py seed "$db" "$users"
echo "seeded $users users in $(( $(date +%s) - start )) s"

"$binary" serve 2>"$work/server.log" &
server=$!
until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.05; done
# Housekeeping samples how common each search trigram is (PostgreSQL; hourly, first at start
# + one interval): with a 1 s interval the sample is taken before measuring.
sleep 5
python3 bench/list_latency.py measure "$db" "$users" "http://127.0.0.1:$port"
if [ "$backend" = postgres ]; then kill "$server"; wait "$server" 2>/dev/null || true; psql -q -d "$base" -c "DROP DATABASE IF EXISTS $name"; fi
