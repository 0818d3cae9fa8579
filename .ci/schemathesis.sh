#!/usr/bin/env bash
# Fuzzes the JSON API against its OpenAPI document with schemathesis, using a valid token:
# no server error, no response outside the contract. Uses the debug binary `cargo test` built.
set -euo pipefail
cd "$(dirname "$0")/.."
# schemathesis comes from .ci/.venv (.ci/run installs it, pinned in .ci/requirements.txt).
[ -x "$PWD/.ci/.venv/bin/st" ] && export PATH="$PWD/.ci/.venv/bin:$PATH"
command -v st >/dev/null || { echo "FATAL: schemathesis (st) is not installed: run .ci/run, or pip install -r .ci/requirements.txt" >&2; exit 1; }
binary="$PWD/target/debug/portcullis"
[ -x "$binary" ] || cargo build --quiet
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
export DATABASE_URL="sqlite://$work/fuzz.db" PORTCULLIS_BIND="127.0.0.1:$port" PORTCULLIS_LOG=warn
# The fuzzing admin signs in with a password alone (the second step is covered by the tests).
export PORTCULLIS_MFA_REQUIRED=off
password="violet tractor sings loudly"
echo "$password" | "$binary" user create --username admin --email admin@example.com --role admin --password-stdin >/dev/null
"$binary" serve 2>"$work/server.log" &
server=$!
url="http://127.0.0.1:$port"
# A bounded wait: a server that never comes up fails the step, with its log, instead of hanging it.
for _ in $(seq 300); do curl -sf --max-time 2 "$url/healthz" >/dev/null && break; sleep 0.1; done
if ! curl -sf --max-time 2 "$url/healthz" >/dev/null; then
  echo "FATAL: the server did not start within 30 s:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
token() {
  curl -sf --max-time 10 -H 'content-type: application/json' -d "{\"username\":\"admin\",\"password\":\"$password\"}" "$url/api/token" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
# Two sessions, taken before fuzzing (its random sign-ins soon pause this address, by design).
# Sign-out ends its token's session, so it is fuzzed on its own, with the second token.
main_token="$(token)"
logout_token="$(token)"
st --config-file .ci/schemathesis.toml run "$url/api/openapi.json" --checks all --max-examples 100 --exclude-path /api/logout \
  --header "Authorization: Bearer $main_token"
st --config-file .ci/schemathesis.toml run "$url/api/openapi.json" --checks all --max-examples 20 --include-path /api/logout \
  --header "Authorization: Bearer $logout_token"
if grep -q "panicked" "$work/server.log"; then
  echo "FATAL: the server panicked during fuzzing:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
