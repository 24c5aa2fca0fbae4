#!/usr/bin/env bash
# Where the Spin component's bytes go: builds it as the release does but keeps the
# function names and stops before the component wrapping (twiggy reads core modules; the
# wrapper adds only the adapter), in a separate target directory; then prints twiggy's
# largest functions and the size by crate. Needs twiggy (`cargo install twiggy --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}/bloat
CARGO_PROFILE_RELEASE_STRIP=false RUSTFLAGS="-C link-arg=--skip-wit-component" cargo build --lib --target wasm32-wasip2 --release \
  --features atomics --target-dir "$T" >&2
WASM="$T"/wasm32-wasip2/release/scim_edge.wasm
# Function bodies and data only: the debug and name sections this build keeps are not
# in the shipped component.
twiggy top -n 100000 --format csv "$WASM" | python3 -c '
import csv, re, sys
code, by, data = [], {}, 0
for r in csv.DictReader(sys.stdin):
    name, size = r["Name"], int(r["ShallowSize"])
    if name.startswith("custom section") or "subsection" in name or name.startswith("Σ") or name.startswith("..."):
        continue
    if name.startswith("data segment"):
        data += size
        continue
    code.append((size, name))
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", name.lstrip("<&*( "))
    crate = m.group(1) if m else "(unnamed)"
    by[crate] = by.get(crate, 0) + size
total = sum(by.values()) + data
print("| crate | bytes | share |")
print("| --- | ---: | ---: |")
for crate, size in sorted(by.items(), key=lambda kv: -kv[1])[:15]:
    print(f"| {crate} | {size:,} | {100 * size / total:.1f}% |")
print(f"| data segments | {data:,} | {100 * data / total:.1f}% |")
print(f"| code and data | {total:,} | 100% |")
print()
print("| largest functions | bytes |")
print("| --- | ---: |")
for size, name in sorted(code, reverse=True)[:15]:
    short = re.sub("::h[0-9a-f]{16}$", "", name)[:90]
    print(f"| `{short}` | {size:,} |")
'
