#!/usr/bin/env bash
# Long fuzzing pass of the protocol core (rust/pgoxide-proto/tests/fuzz.rs) in release:
# every target in its own process, in parallel, each with PGOXIDE_FUZZ_CASES cases.
#
#   tools/fuzz.sh [cases per target] [base seed] [jobs]
#
# Defaults: 1500000 cases per target (over 10^7 in all), a seed from the clock, one job per
# core. A failure names its case; replay it alone (PGOXIDE_FUZZ_TRACE=1 prints the session's
# events) with
#   PGOXIDE_FUZZ_REPLAY=target:seed cargo test --release -p pgoxide-proto --test fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-1500000}
seed=${2:-$(date +%s)}
jobs=${3:-$(nproc)}
targets=(framing session backend_parsers binary_codecs text_codecs copy pgoutput)

bin=$(cargo test --release --locked -p pgoxide-proto --test fuzz --no-run 2>&1 |
  tee /dev/stderr | sed -n 's/.*Executable tests\/fuzz.rs (\(.*\))/\1/p')
[ -x "$bin" ] || { echo "fuzz: test binary not found" >&2; exit 2; }
log=$(mktemp -d)
echo "fuzz: ${#targets[@]} targets x $cases cases, base seed $seed, $jobs at a time; logs in $log"
start=$(date +%s)
export PGOXIDE_FUZZ_CASES=$cases PGOXIDE_FUZZ_SEED=$seed
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} sh -c \
  "'$bin' fuzz_{} --exact --nocapture > '$log/{}.log' 2>&1 || echo 'fuzz: target {} FAILED (see $log/{}.log)'"
elapsed=$(( $(date +%s) - start ))
grep -h '^fuzz [a-z]*: ' "$log"/*.log || true
total=$(grep -ho '^fuzz [a-z]*: [0-9]* cases' "$log"/*.log | awk '{s += $3} END {print s + 0}')
echo "fuzz: $total cases in ${elapsed}s ($(( total / (elapsed > 0 ? elapsed : 1) ))/s)"
if grep -q 'panicked\|fuzz: case\|test result: FAILED' "$log"/*.log; then
  grep -h 'panicked\|replay with\|fuzz: case' "$log"/*.log | cut -c1-600
  exit 1
fi
