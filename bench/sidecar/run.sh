#!/usr/bin/env bash
# The sidecar's data path against its references, one two-VM soft-RoCE lab run, same link, same
# client/server program (test/vm/kernel-smc/smc-perf: 64-byte ping-pong RTT, bulk throughput):
#
#   direct            pod -> pod, neither has a sidecar (plain TCP over the pod network)
#   sidecar-smcr      pod -> pod through both sidecars, upgraded to SMC-R (rdma.dataPath native)
#   sidecar-fallback  pod -> pod through both sidecars, TCP fallback (tenant red -> blue: not allowed)
#   sidecar-bypass    pod -> pod with sidecars on intercept.redirect=peers: red -> blue is not redirected
#   tcp-node          node -> node plain TCP (the reference of kernel SMC-R)
#   kernel-smcr       node -> node kernel SMC-R (smc-preload.so, smc-setup --lab)
#   raw-rdma-write    the addon's RDMA WRITE bandwidth, 64 KiB messages (bench/rdma-write/bench.ts)
#
# plus CPU seconds per GiB moved (sidecars on both nodes, the client, the server; see README.md).
#
#   bench/sidecar/run.sh [--keep DIR]
#   env: BENCH_ROUNDS (1), BENCH_PINGS (1000), BENCH_BULK_MIB (16), BENCH_RDMA_ITERS (256, 0 = skip),
#        BENCH_DATA_PATH (native), BENCH_RMB_SIZE (the sidecars' limits.rmbSize, 4194304)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
KEEP=""
[[ "${1:-}" == "--keep" ]] && KEEP="${2:?}"
cd "$REPO"
T0=$SECONDS
say() { echo "[bench-sidecar $((SECONDS - T0))s] $*" >&2; }
[[ -f dist/sidecar/src/main.js && -f native/build/Release/smc_verbs.node ]] ||
  { echo "build first: npm run build (dist/ and the native addon)" >&2; exit 3; }
KSMC_DIR="$(test/vm/kernel-smc/build.sh)"
SMCO_DIR="$(test/vm/smc-option/build.sh)"
RDMA_ITERS=${BENCH_RDMA_ITERS:-256}
RDMA_JS=""
if [[ $RDMA_ITERS != 0 ]]; then
  node test/vm/addon/transpile.mjs bench/rdma-write/bench.ts >/dev/null
  RDMA_JS="$REPO/node_modules/.cache/smc-vm-lab/bench/rdma-write/bench.js"
fi
# The VMs load a copy of the addon (a concurrent native rebuild cannot swap it mid-run).
CACHE="$REPO/node_modules/.cache/smc-bench-sidecar"
mkdir -p "$CACHE"
cp native/build/Release/smc_verbs.node "$CACHE/smc_verbs.node"
RUN="${KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/sidecar-bench.XXXXXX")}"
mkdir -p "$RUN"
# The directory the operator would publish for the three sidecar pods (renderShard), and the
# env its webhook injects (policy blue / red, mode Prefer, no allowed peer tenants).
SHARD="$(node --input-type=module -e "
import { renderShard } from '$REPO/dist/operator/src/directory/build.js';
const ep = (podIP, node, pod, tenant) => ({ podIP, node, namespace: 'bench', pod, tenant, sidecarPort: 15100, allowedPeerTenants: [] });
console.log(renderShard(0, 1, [ep('10.244.0.10', 'node0', 'web', 'blue'), ep('10.244.1.10', 'node1', 'client', 'blue'),
  ep('10.244.1.11', 'node1', 'batch', 'red'), ep('10.244.1.13', 'node1', 'guest', 'red')]).json);")"
envfile() { printf 'SMC_POLICY=%s\nSMC_TENANT=%s\nSMC_MODE=Prefer\nSMC_ALLOWED_PEER_TENANTS=\n' "$1" "$1"; }
cat >"$RUN/node.sh" <<SH
set -euo pipefail
mkdir -p "\$LAB_OUT/input/directory"
cat >"\$LAB_OUT/input/directory/shard-0.json" <<'EOF_IN'
$SHARD
EOF_IN
cat >"\$LAB_OUT/input/sidecar-client.env" <<'EOF_IN'
$(envfile blue)
EOF_IN
cat >"\$LAB_OUT/input/sidecar-web.env" <<'EOF_IN'
$(envfile blue)
SMC_KERNEL_PEERS=true
SMC_INTERCEPT_REDIRECT=peers
EOF_IN
cat >"\$LAB_OUT/input/sidecar-batch.env" <<'EOF_IN'
$(envfile red)
EOF_IN
cat >"\$LAB_OUT/input/sidecar-guest.env" <<'EOF_IN'
$(envfile red)
SMC_INTERCEPT_REDIRECT=peers
EOF_IN
export KSMC_DIR=$(printf '%q' "$KSMC_DIR") SMCO_DIR=$(printf '%q' "$SMCO_DIR") BENCH_HERE=$(printf '%q' "$HERE")
export BENCH_ADDON=$(printf '%q' "$CACHE/smc_verbs.node") BENCH_DATA_PATH=${BENCH_DATA_PATH:-native}
export BENCH_RMB_SIZE=${BENCH_RMB_SIZE:-4194304}
export BENCH_ROUNDS=${BENCH_ROUNDS:-1} BENCH_PINGS=${BENCH_PINGS:-1000} BENCH_BULK_MIB=${BENCH_BULK_MIB:-16}
export BENCH_RDMA_JS=$(printf '%q' "$RDMA_JS") BENCH_RDMA_ITERS=$RDMA_ITERS
exec bash $(printf '%q' "$HERE/node.sh")
SH
say "lab run (two VMs), run dir $RUN"
rc=0
LAB_EXTRA_MODULES="nf_tables nf_conntrack nf_nat nft_chain_nat nft_redir nft_ct veth" \
  timeout 450 test/vm/lab-run --timeout 420 --live --keep "$RUN/lab" "$RUN/node.sh" "$RUN/node.sh" || rc=$?
say "lab run finished ($rc)"
if [[ $rc != 0 ]]; then
  echo "lab run failed ($rc); node outputs:" >&2
  tail -n 40 "$RUN"/lab/node*/output >&2 || true
fi
node "$HERE/report.mjs" "$RUN/lab/node1" || rc=1
if [[ $rc != 0 ]]; then
  echo "run dir kept: $RUN" >&2
elif [[ -z "$KEEP" ]]; then
  rm -rf "$RUN"
fi
exit $rc
