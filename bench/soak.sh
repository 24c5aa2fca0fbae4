#!/usr/bin/env bash
# The soak (not in CI): the built component on the test host, provisioning a fake
# Bitwarden (or Vaultwarden) under an Okta-like load while faults come and go on the vault
# and the store, then the invariants checked with the faults off and the outbox drained
# (see host/examples/soak/main.rs). Exit status 1 when an invariant fails.
#
#   bench/soak.sh                          half an hour (SOAK_SECONDS=1800)
#   SOAK_SECONDS=60 bench/soak.sh          the minute scripts/test runs
#   bench/soak.sh --clients 8 --seed 42    more clients; a seed replays a run's choices
#   bench/soak.sh --vault vaultwarden      Vaultwarden's import in place of Bitwarden's API
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}
export SOAK_SECONDS=${SOAK_SECONDS:-1800}

rustup target add wasm32-wasip2 >/dev/null
cargo build --lib --target wasm32-wasip2 --release --features atomics
# The dev profile, as the tests build the host: one wasmtime build, its dependencies
# optimized (Cargo.toml).
cargo build -p scim-edge-host --example soak
"$T"/debug/examples/soak --wasm "$T"/wasm32-wasip2/release/scim_edge.wasm "$@"
