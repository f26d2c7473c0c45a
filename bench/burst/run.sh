#!/usr/bin/env bash
# A burst of BURST_N concurrent new connections between two pods, one two-VM soft-RoCE lab run,
# same link, same server (nginx, a small file) and client (bench/burst/client.ts):
#
#   direct   plain -> legacy, neither pod has a sidecar (plain TCP over the pod network)
#   smcr     client -> web through both sidecars; one warm-up connection first builds the link
#            group, then the burst (its connections join it)
#
# Per connection: connect latency, time to the first byte and to the whole answer, how it ended;
# per sidecar: smc_connections_total and smc_app_resets_total deltas, link groups, registered
# memory, RSS (see README.md).
#
#   bench/burst/run.sh [--keep DIR]
#   env: BURST_N (1000), BURST_SIZE (512: bytes of the file), BURST_TIMEOUT_S (240: per burst),
#        BURST_SETTLE_S (10), BURST_GAP_S (2), BURST_SAMPLE_MS (5000; 0: no gauge sampling; one
#        scrape costs a sidecar ~50 ms of CPU under TCG: at 1000 the sampling took ~12% of the
#        client sidecar's CPU during the burst),
#        BURST_RMB_SIZE (the sidecars' limits.rmbSize; default: theirs, 64 KiB),
#        BURST_DATA_PATH (native), BURST_LOG_LEVEL (info), BURST_SIDECAR_ENV ("KEY=VALUE ..." for
#        both sidecars), BURST_NOFILE (65536), BURST_SOMAXCONN (8192), BURST_LAB_TIMEOUT (720)
# Exit status: 0 when the run completed, whether or not the goals were met; non-zero when it broke.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
KEEP=""
[[ "${1:-}" == "--keep" ]] && KEEP="${2:?}"
cd "$REPO"
T0=$SECONDS
say() { echo "[bench-burst $((SECONDS - T0))s] $*" >&2; }
[[ -f dist/sidecar/src/main.js && -f native/build/Release/smc_verbs.node ]] ||
  { echo "build first: npm run build (dist/ and the native addon)" >&2; exit 3; }
# The VMs run the host's programs.
command -v nginx >/dev/null || { echo "nginx not found on the host (the VMs run the host's files)" >&2; exit 3; }
N=${BURST_N:-1000}
LAB_TIMEOUT=${BURST_LAB_TIMEOUT:-720}
[[ $N =~ ^[0-9]+$ && $N -ge 1 ]] || { echo "BURST_N must be a positive integer" >&2; exit 2; }
[[ $LAB_TIMEOUT =~ ^[0-9]+$ && $LAB_TIMEOUT -ge 120 ]] || { echo "BURST_LAB_TIMEOUT: seconds, >= 120" >&2; exit 2; }
# The client, transpiled on its own (as bench/rdma-write's bench.ts): the run does not depend on
# the rest of the tree type-checking at this moment.
node test/vm/addon/transpile.mjs bench/burst/client.ts >/dev/null
CLIENT_JS="$REPO/node_modules/.cache/smc-vm-lab/bench/burst/client.js"
# The VMs load a copy of the addon (a concurrent native rebuild cannot swap it mid-run).
CACHE="$REPO/node_modules/.cache/smc-bench-burst"
mkdir -p "$CACHE"
cp native/build/Release/smc_verbs.node "$CACHE/smc_verbs.node"
RUN="${KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/burst-bench.XXXXXX")}"
mkdir -p "$RUN"
# The directory the operator would publish for the two sidecar pods (renderShard), and the env its
# webhook injects (policy blue, mode Prefer, no allowed peer tenants).
SHARD="$(node --input-type=module -e "
import { renderShard } from '$REPO/dist/operator/src/directory/build.js';
const ep = (podIP, node, pod, tenant) => ({ podIP, node, namespace: 'bench', pod, tenant, sidecarPort: 15100, allowedPeerTenants: [] });
console.log(renderShard(0, 1, [ep('10.244.0.10', 'node0', 'web', 'blue'), ep('10.244.1.10', 'node1', 'client', 'blue')]).json);")"
envfile() { printf 'SMC_POLICY=%s\nSMC_TENANT=%s\nSMC_MODE=Prefer\nSMC_ALLOWED_PEER_TENANTS=\n' "$1" "$1"; }
q() { printf '%q' "$1"; }
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
EOF_IN
export BURST_HERE=$(q "$HERE") BURST_CLIENT_JS=$(q "$CLIENT_JS") BURST_ADDON=$(q "$CACHE/smc_verbs.node")
export BURST_N=$N BURST_SIZE=$(q "${BURST_SIZE:-512}") BURST_TIMEOUT_S=$(q "${BURST_TIMEOUT_S:-240}")
export BURST_SETTLE_S=$(q "${BURST_SETTLE_S:-10}") BURST_GAP_S=$(q "${BURST_GAP_S:-2}")
export BURST_SAMPLE_MS=$(q "${BURST_SAMPLE_MS:-5000}") BURST_RMB_SIZE=$(q "${BURST_RMB_SIZE:-}")
export BURST_DATA_PATH=$(q "${BURST_DATA_PATH:-native}") BURST_LOG_LEVEL=$(q "${BURST_LOG_LEVEL:-info}")
export BURST_SIDECAR_ENV=$(q "${BURST_SIDECAR_ENV:-}") BURST_NOFILE=$(q "${BURST_NOFILE:-65536}")
export BURST_SOMAXCONN=$(q "${BURST_SOMAXCONN:-8192}") BURST_LAB_TIMEOUT=$LAB_TIMEOUT
export BURST_PROFILE=$(q "${BURST_PROFILE:-}")
exec bash $(q "$HERE/node.sh")
SH
say "lab run (two VMs), BURST_N=$N, run dir $RUN"
rc=0
LAB_EXTRA_MODULES="nf_tables nf_conntrack nf_nat nft_chain_nat nft_redir nft_ct veth" \
  timeout $((LAB_TIMEOUT + 30)) test/vm/lab-run --timeout "$LAB_TIMEOUT" --live --keep "$RUN/lab" \
  "$RUN/node.sh" "$RUN/node.sh" || rc=$?
say "lab run finished ($rc)"
if [[ $rc != 0 ]]; then
  echo "lab run failed ($rc); node outputs:" >&2
  tail -n 40 "$RUN"/lab/node*/output >&2 || true
fi
node "$HERE/report.mjs" "$RUN/lab" || rc=1
if [[ -n ${BURST_PROFILE:-} ]]; then
  for prof in "$RUN"/lab/node*/prof/*/*.cpuprofile; do
    [[ -f $prof ]] && node "$REPO/bench/cpu-profile.mjs" "$prof"
  done
  KEEP=${KEEP:-$RUN}
fi
if [[ $rc != 0 ]]; then
  echo "run dir kept: $RUN" >&2
elif [[ -z "$KEEP" ]]; then
  rm -rf "$RUN"
fi
exit $rc
