#!/usr/bin/env bash
# Serves the scim-edge component through the test host and, as a peer, scim2-server
# (PyPI) with its own CLI, both on 127.0.0.1; drives the same Okta-like workload through
# each with the same client and concurrency; serves the one-get floor component through
# the same host, measured right after scim-edge at each size. Prints Markdown tables.
#
#   bench/spin.sh [USERS ...]      default: 1000 100000
# Env: THREADS (8), OPS (2000); PEER=0 skips scim2-server; PROFILE=edge serves the edge
# component on the test host's edge profile instead of the Spin one.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALES=("${@:-1000 100000}")
[ $# -eq 0 ] && SCALES=(1000 100000)
THREADS=${THREADS:-8}
OPS=${OPS:-2000}
PEER=${PEER:-1}
PROFILE=${PROFILE:-spin}

rustup target add wasm32-wasip2 >/dev/null
if [ "$PROFILE" = edge ]; then
  cargo build --lib --target wasm32-wasip2 --release --features spin --target-dir target/edge
  WASM=target/edge/wasm32-wasip2/release/scim_edge.wasm
else
  cargo build --lib --target wasm32-wasip2 --release --features atomics
  WASM=target/wasm32-wasip2/release/scim_edge.wasm
fi
cargo build --manifest-path bench/floor/Cargo.toml --target wasm32-wasip2 --release --target-dir target
# The dev build: dependencies are optimized (opt-level 1) and a release build of
# wasmtime with LTO takes far longer than the benchmark; compare ratios, not absolutes.
cargo build -p scim-edge-host --bins
if [ ! -x .venv/bin/scim2-server ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q "scim2-tester[httpx2]==0.5.2" "scim2-server==0.8.3"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.2; done; return 1; }

ORG=3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d
KEY=bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
HASH=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT

echo "| server | operation | requests | req/s | p50 ms | p99 ms | errors |"
echo "|---|---|---:|---:|---:|---:|---:|"
P3=$(free_port)
target/debug/scim-edge-host --wasm target/wasm32-wasip2/release/scim_edge_floor.wasm --listen "127.0.0.1:$P3" --workers 2 >/dev/null &
PIDS+=($!)
wait_up "$P3"
for USERS in "${SCALES[@]}"; do
  P1=$(free_port)
  SPIN_VARIABLE_ORGANIZATIONS="{\"$ORG\": {\"keys\": [\"$HASH\"], \"policy\": \"strict\"}}" \
    target/debug/scim-edge-host --profile "$PROFILE" --wasm "$WASM" --listen "127.0.0.1:$P1" --workers 2 >/dev/null &
  PIDS+=($!)
  wait_up "$P1"
  target/debug/scim-edge-load --base "http://127.0.0.1:$P1/v2/$ORG" --key "$KEY" --users "$USERS" --threads "$THREADS" --ops "$OPS" --label "scim-edge @$USERS"
  # The floor right after, in the same phase of the machine, for the ratio.
  target/debug/scim-edge-load --base "http://127.0.0.1:$P3" --key x --floor --threads "$THREADS" --ops "$OPS" --label "floor @$USERS"

  [ "$PEER" = 0 ] && continue
  P2=$(free_port)
  .venv/bin/scim2-server --hostname 127.0.0.1 --port "$P2" --bearer-token "$KEY" >/dev/null 2>&1 &
  PIDS+=($!)
  wait_up "$P2"
  target/debug/scim-edge-load --base "http://127.0.0.1:$P2" --key "$KEY" --users "$USERS" --threads "$THREADS" --ops "$OPS" --label "scim2-server @$USERS"
done

