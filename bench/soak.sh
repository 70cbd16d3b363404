#!/usr/bin/env bash
# Fault soak: runs N kill trials of the fault suite (service/internal/fault), each with a seed of
# its own, and prints how many converged and the seeds that did not. Outside CI: a 100-trial
# soak takes hours on a small machine. Needs root and the engine, as the fault suite does.
#
#   bash bench/soak.sh [N]            N trials (default 100)
#
# Environment:
#   SOAK_TESTS     the fault tests to draw from (default "TestKillDuringUp TestKillDuringOtherOps")
#   SOAK_PARALLEL  trials at once (default 2)
#   SOAK_LOGS      where each trial's output goes (default a new temporary dir)
# A failed seed replays with:
#   FORGEBOX_FAULT_SEED=<seed> FORGEBOX_FAULT_TRIALS=1 go test -count=1 -v -run '^<test>$' ./service/internal/fault/
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100}"
TESTS=(${SOAK_TESTS:-TestKillDuringUp TestKillDuringOtherOps})
PARALLEL="${SOAK_PARALLEL:-2}"
LOGS="${SOAK_LOGS:-$(mktemp -d /tmp/forgebox-soak.XXXXXX)}"
mkdir -p "$LOGS"

bash testimages/ensure-engine.sh >&2
eval "$(bash testimages/build.sh)"
export FORGEBOX_REQUIRE_ENGINE=1
go test -c -o "$LOGS/fault.test" ./service/internal/fault/

trial() { # INDEX: one trial, one fresh seed; prints "ok|FAIL test seed"
  local i=$1 test=${TESTS[$(( $1 % ${#TESTS[@]} ))]} seed
  seed=$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')
  if (cd service/internal/fault && FORGEBOX_FAULT_SEED=$seed FORGEBOX_FAULT_TRIALS=1 \
      timeout 20m "$LOGS/fault.test" -test.count=1 -test.v -test.run "^$test\$" >"$LOGS/$i-$test-$seed.log" 2>&1); then
    echo "ok $test $seed"
  else
    echo "FAIL $test $seed"
  fi
}

results="$LOGS/results"
: >"$results"
running=0
for ((i = 0; i < N; i++)); do
  trial "$i" >>"$results" &
  if (( ++running >= PARALLEL )); then wait -n; running=$((running - 1)); fi
  printf 'soak: %d started, %d done, %d failed\r' "$((i + 1))" "$(wc -l <"$results")" "$(grep -c '^FAIL' "$results" || true)" >&2
done
wait
echo >&2
total=$(wc -l <"$results")
ok=$(grep -c '^ok' "$results" || true)
echo "converged: $ok/$total (logs in $LOGS)"
if grep -q '^FAIL' "$results"; then
  echo "failed seeds (test seed):"
  grep '^FAIL' "$results" | sed 's/^FAIL /  /'
  exit 1
fi
