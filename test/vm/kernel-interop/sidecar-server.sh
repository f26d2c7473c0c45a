#!/usr/bin/env bash
# node0 of the first test in test/vm/kernel-interop.test.ts: a "pod" without a peer sidecar in front of it: the
# compiled sidecar (policy.kernelPeers, native data path) with its nftables rules, the HTTP app
# (test/vm/sidecar/app-server.mjs, uid 65534), and the sock_ops program that echoes the SMC TCP
# option on the SYN-ACK of the inbound listener (sidecar/bpf, attached to the sidecar's cgroup for
# local port 15006). node1's kernel SMC-R client reaches the app through it.
set -euo pipefail
cd "$LAB_REPO"
. test/vm/smc-option/lib.sh
export SMC_VERBS_ADDON="$LAB_REPO/native/build/Release/smc_verbs.node"
main="node dist/sidecar/src/main.js"
O="$(smco_dir)"

cat >"$LAB_OUT/directory.json" <<JSON
{"version":1,"shard":0,"shards":1,"endpoints":[
 {"podIP":"10.77.0.1","node":"node0","namespace":"lab","pod":"b","tenant":"team-a","sidecarPort":15100,"allowedPeerTenants":[]}]}
JSON
cat >"$LAB_OUT/sidecar.json" <<JSON
{"tenant":"team-a","logLevel":"debug",
 "rdma":{"device":"$LAB_RXE","gidIndex":1,"dataPath":"native"},
 "directory":{"path":"$LAB_OUT/directory.json"},
 "intercept":{"sidecarUid":0},
 "policy":{"kernelPeers":true},
 "timeouts":{"clcHandshakeMs":30000,"linkSetupMs":20000}}
JSON
cfg="$LAB_OUT/sidecar.json"
$main intercept install --config "$cfg"

setpriv --reuid 65534 --regid 65534 --clear-groups node test/vm/sidecar/app-server.mjs >"$LAB_OUT/http.log" 2>&1 &
appPid=$!
lab_wait_tcp 127.0.0.1 8080 60

CG=/sys/fs/cgroup/smc-sidecar
mkdir -p "$CG"
"$O/smc-option-loader" attach "$CG" --lport 15006 >"$LAB_OUT/attach.json"
echo "ATTACH $(tr -d '\n' <"$LAB_OUT/attach.json")"
smco_in_cgroup "$CG" $main run --config "$cfg" >"$LAB_OUT/sidecar.log" 2>&1 &
sidecar=$!
lab_retry 60 curl -sf http://127.0.0.1:15021/healthz/ready >/dev/null
echo "SIDECAR_READY"

# Until node1 is done (a plain TCP connect to 15999, relayed by the inbound listener).
node -e "require('net').createServer(()=>process.exit(0)).listen(15999,'0.0.0.0');setTimeout(()=>process.exit(1),400000)" || true
curl -sf http://127.0.0.1:15090/metrics | grep -E '^smc_(connections_total|bytes_total|rdma_errors_total|link_groups|links)[{ ]' |
  sed 's/^/METRIC /' || true
sed 's/^/APP /' "$LAB_OUT/http.log"
"$O/smc-option-loader" stats | tr -d '\n' | sed 's/^/BPF_STATS /'
echo
kill "$sidecar" "$appPid" || true
wait || true
"$O/smc-option-loader" detach "$CG" >/dev/null || true
$main intercept remove --config "$cfg"
echo "SERVER_DONE"
