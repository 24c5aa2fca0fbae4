#!/usr/bin/env bash
# The long fuzz runs (not in CI): every target (or those named) to a number of executions
# or for a time, two at a time by default (one per core; with fewer targets than cores,
# each target runs as several processes sharing one corpus, the executions split between
# them), built as CI builds them (no sanitizer, debug assertions on), with its seeds and
# dictionary. Each run grows a working
# corpus (target/fuzz/corpus/<target>, kept between runs); at its end the working corpus
# and the committed one are merged into a minimal set that replaces the committed corpus
# (fuzz/corpus/<target>), which CI's short runs start from. Prints one row per target:
# executions, coverage (cov and ft from libFuzzer's last stats line), the committed
# corpus's size, and findings (inputs written to fuzz/artifacts/<target>/ by this run).
# Exit status 1 when there is any finding.
#
#   fuzz/run-long.sh                      10 million executions per target
#   fuzz/run-long.sh -r 20000             20,000 executions per target
#   fuzz/run-long.sh -t 3600 -j 2 router  one hour of router
#
# Each process's log is in target/fuzz/long/<target>.<n>.log. A single input slower than 30 s,
# or one allocation over 512 MB (-malloc_limit_mb), is a finding too.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=10000000
seconds=
jobs=2
while getopts "r:t:j:h" opt; do
  case $opt in
    r) runs=$OPTARG ;;
    t) seconds=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) sed -n '2,19p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^scim-edge-fuzz$')
fi

fuzz_version=0.13.2
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $fuzz_version" ]; then
  cargo install cargo-fuzz --version "$fuzz_version" --locked
fi
RUSTC_BOOTSTRAP=1 cargo fuzz build --sanitizer none --debug-assertions --target-dir target/fuzz
bin=target/fuzz/$(rustc -vV | sed -n 's/^host: //p')/release
logs=target/fuzz/long
mkdir -p "$logs"

workers=$((jobs / ${#targets[@]}))
[ "$workers" -ge 1 ] || workers=1
if [ -n "$seconds" ]; then
  budget=(-max_total_time="$seconds")
else
  budget=(-runs="$(((runs + workers - 1) / workers))")
fi

one() {
  local t=$1
  local work=target/fuzz/corpus/$t fresh=$logs/$t.merged
  mkdir -p "$work" "fuzz/corpus/$t" "fuzz/artifacts/$t"
  ls "fuzz/artifacts/$t" >"$logs/$t.before"
  rm -f "$logs/$t".[0-9]*.log
  for ((n = 1; n <= workers; n++)); do
    "$bin/$t" "${budget[@]}" -dict="fuzz/dict/$t.dict" -timeout=30 -malloc_limit_mb=512 \
      -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" \
      "$work" "fuzz/corpus/$t" "fuzz/seeds/$t" >"$logs/$t.$n.log" 2>&1 &
  done
  wait || true
  rm -rf "$fresh" && mkdir -p "$fresh"
  if "$bin/$t" -merge=1 -timeout=30 "$fresh" "fuzz/corpus/$t" "$work" >"$logs/$t.merge.log" 2>&1; then
    rm -rf "fuzz/corpus/$t" && mv "$fresh" "fuzz/corpus/$t"
  fi
}

running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  echo "fuzzing $t ($workers process(es), logs: $logs/$t.*.log)"
  one "$t" &
  running=$((running + 1))
done
wait

found=0
printf '\n| target | executions | cov | ft | corpus | findings |\n|---|---:|---:|---:|---:|---|\n'
for t in "${targets[@]}"; do
  logs_t=("$logs/$t".[0-9]*.log)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "${logs_t[@]}" | awk '{s += $1} END {print s}')
  # Coverage is the most any process saw: they share the corpus, so each ends near the others.
  lasts=$(for l in "${logs_t[@]}"; do grep -E '^#[0-9]+.*cov: ' "$l" | tail -1 || true; done)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$lasts" | sort -n | tail -1)
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$lasts" | sort -n | tail -1)
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  new=$(comm -13 "$logs/$t.before" <(ls "fuzz/artifacts/$t") | tr '\n' ' ')
  if [ -n "$new" ] || grep -q -E '^==[0-9]+== ERROR: libFuzzer|^SUMMARY: libFuzzer' "${logs_t[@]}"; then
    found=1
  fi
  printf '| %s | %s | %s | %s | %s | %s |\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
    "$corpus" "${new:-none}"
done
exit "$found"
