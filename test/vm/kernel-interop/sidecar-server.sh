#!/usr/bin/env bash
# node0 of the first test in test/vm/kernel-interop.test.ts: a "pod" without a peer sidecar in front of it: the
# compiled sidecar (policy.kernelPeers, native data path) with its nftables rules, the HTTP app
# (test/vm/sidecar/app-server.mjs, uid 65534), and the sock_ops program that echoes the SMC TCP
# option on the SYN-ACK of the inbound listener (sidecar/bpf, attached to the sidecar's cgroup for
# local port 15106). node1's kernel SMC-R client reaches the app through it.
set -euo pipefail
cd "$LAB_REPO"
. test/vm/kernel-interop/lib.sh

# The sidecar (and its redirect) first: node1 starts once port 8080 answers, which must then
# already be through the sidecar.
kp_start_sidecar --lport 15106
echo "ATTACH $(tr -d '\n' <"$LAB_OUT/attach.json")"
setpriv --reuid 65534 --regid 65534 --clear-groups node test/vm/sidecar/app-server.mjs >"$LAB_OUT/http.log" 2>&1 &
appPid=$!
lab_wait_tcp 127.0.0.1 8080 60
echo "SIDECAR_READY"

# Until node1 is done (a plain TCP connect to 15999, relayed by the inbound listener).
node -e "require('net').createServer(()=>process.exit(0)).listen(15999,'0.0.0.0');setTimeout(()=>process.exit(1),400000)" || true
# The aborted connections' RMBs are retired asynchronously (DELETE RKEY and the kernel's answer):
# wait, bounded, until no RMB is in use or retiring before reading the metrics and the log.
for _ in $(seq 1 100); do
  rmbs=$(curl -sf http://127.0.0.1:15190/metrics | grep -E '^smc_rmbs\{state="(in-use|retiring)"\}' | awk '{ s += $2 } END { print s + 0 }')
  [ "$rmbs" = 0 ] && break
  sleep 0.2
done
echo "RMBS_BUSY_AT_END $rmbs"
curl -sf http://127.0.0.1:15190/metrics | grep -E '^smc_(connections_total|bytes_total|rdma_errors_total|link_groups|links)[{ ]' |
  sed 's/^/METRIC /' || true
sed 's/^/APP /' "$LAB_OUT/http.log"
echo "PUMP_ABORTS $(kp_pump_aborts)"
"$O/smc-option-loader" stats | tr -d '\n' | sed 's/^/BPF_STATS /'
echo
kill "$appPid" || true
kp_stop_sidecar
echo "SERVER_DONE"
