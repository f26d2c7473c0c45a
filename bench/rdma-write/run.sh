#!/usr/bin/env bash
# RDMA WRITE benchmark of the native addon against perftest on the same soft-RoCE link, in one
# two-VM lab run: ib_write_bw vs the addon's 64 KiB RDMA WRITE bandwidth, ib_write_lat vs the
# addon's 64-byte RDMA_WRITE_WITH_IMM ping-pong. Prints both and the ratios (absolute figures
# under TCG drift between runs; compare ratios).
#
#   bench/rdma-write/run.sh [--keep DIR]
#   env: BENCH_ROUNDS (default 3), BENCH_ITERS_BW, BENCH_ITERS_LAT (default 1000),
#        BENCH_ISOLATION=1 (adds the isolation step), BENCH_ITERS_ISOLATION (default 200)
# Each round runs ib_write_bw, the addon's bw, ib_write_lat, the addon's lat back to back; the
# report gives per-round ratios and their median. With BENCH_ISOLATION=1, one isolation step
# follows the rounds (PD per link group vs type 2 memory windows, README.md); BENCH_ROUNDS=0 runs
# it alone.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
KEEP=""
[[ "${1:-}" == "--keep" ]] && KEEP="${2:?}"
cd "$REPO"
[[ -f native/build/Release/smc_verbs.node ]] || npm run build:native >/dev/null
node test/vm/addon/transpile.mjs bench/rdma-write/bench.ts >/dev/null
RUN="${KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/rdma-bench.XXXXXX")}"
mkdir -p "$RUN"
# lab-run passes a script file; it sources the settings, then the VM-side steps.
cat >"$RUN/node.sh" <<SH
export BENCH_REPO=$(printf '%q' "$REPO")
export BENCH_ITERS_BW=${BENCH_ITERS_BW:-1000}
export BENCH_ITERS_LAT=${BENCH_ITERS_LAT:-1000}
export BENCH_ROUNDS=${BENCH_ROUNDS:-3}
export BENCH_ISOLATION=${BENCH_ISOLATION:-0}
export BENCH_ITERS_ISOLATION=${BENCH_ITERS_ISOLATION:-50}
export BENCH_ISO_ITERS_BW=${BENCH_ISO_ITERS_BW:-100}
export BENCH_ISO_ITERS_LAT=${BENCH_ISO_ITERS_LAT:-100}
exec bash $(printf '%q' "$HERE/node.sh")
SH
rc=0
test/vm/lab-run --timeout 900 --quiet --keep "$RUN/lab" "$RUN/node.sh" "$RUN/node.sh" || rc=$?
if [[ $rc != 0 ]]; then
  echo "lab run failed ($rc); node outputs:" >&2
  tail -n 40 "$RUN"/lab/node*/output >&2 || true
fi
node "$HERE/report.mjs" "$RUN/lab/node0/output"
[[ -z "$KEEP" ]] && rm -rf "$RUN"
exit $rc
