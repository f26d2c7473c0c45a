#!/usr/bin/env bash
# Plain TCP vs kernel SMC-R between the two lab VMs, same link, same run: 64-byte ping-pong RTT
# (p50/p99) and bulk throughput, with the same program (test/vm/kernel-smc/smc-perf) once on TCP
# and once on SMC sockets (LD_PRELOAD=smc-preload.so). Rounds alternate TCP and SMC-R; the table
# shows the median over the rounds and the ratio SMC-R/TCP (absolute figures under TCG drift
# between runs; compare ratios). Also checks from the kernel's counters that every SMC
# connection was SMC-R (no fallback).
#
#   bench/kernel-smc/run.sh [--keep DIR]
#   env: BENCH_ROUNDS (3), BENCH_PINGS (2000 per round), BENCH_BULK_MIB (32)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
KEEP=""
[[ "${1:-}" == "--keep" ]] && KEEP="${2:?}"
cd "$REPO"
KSMC_DIR="$(test/vm/kernel-smc/build.sh)"
RUN="${KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/kernel-smc-bench.XXXXXX")}"
mkdir -p "$RUN"
cat >"$RUN/node.sh" <<SH
export KSMC_DIR=$(printf '%q' "$KSMC_DIR")
export BENCH_ROUNDS=${BENCH_ROUNDS:-3}
export BENCH_PINGS=${BENCH_PINGS:-2000}
export BENCH_BULK_MIB=${BENCH_BULK_MIB:-32}
exec bash $(printf '%q' "$HERE/node.sh")
SH
rc=0
test/vm/lab-run --timeout 240 --quiet --keep "$RUN/lab" "$RUN/node.sh" "$RUN/node.sh" || rc=$?
if [[ $rc != 0 ]]; then
  echo "lab run failed ($rc); node outputs:" >&2
  tail -n 40 "$RUN"/lab/node*/output >&2 || true
fi
node "$HERE/report.mjs" "$RUN/lab/node0/output" || rc=1
if [[ $rc != 0 ]]; then
  echo "run dir kept: $RUN (console.log per node under lab/)" >&2
elif [[ -z "$KEEP" ]]; then
  rm -rf "$RUN"
fi
exit $rc
