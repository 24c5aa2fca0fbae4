#!/usr/bin/env bash
# The edge gate's overhead, in one run (envoy/benches/gate.rs): Okta's user POST straight
# to an upstream and through the gate component in front of it, to an upstream that
# answers at once and to the Spin component. Prints a Markdown table and the ratios.
#
#   bench/gate.sh         Env: THREADS (4), REQUESTS per round (2000), ROUNDS (15).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null
T=${CARGO_TARGET_DIR:-target}
cargo build --lib --target wasm32-wasip2 --release --features atomics
cargo build -p scim-edge-gate --target wasm32-wasip2 --release --target-dir "$T"/components
cargo build -p scim-edge-host --bin scim-edge-host
cargo bench -p scim-edge-envoy --bench gate
