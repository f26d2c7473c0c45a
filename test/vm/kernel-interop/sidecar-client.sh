#!/usr/bin/env bash
# node1 of the second test in test/vm/kernel-interop.test.ts: a "pod" whose sidecar
# (policy.kernelPeers) runs in a cgroup where the sock_ops program puts the SMC TCP option on every
# SYN (sidecar/bpf); unmodified socat as the application (uid 65534) reaches node0's kernel SMC-R
# servers, which are not in the directory: the sidecar sees the option echoed on the SYN-ACK and
# speaks SMC-Rv2 CLC to the kernel itself.
set -euo pipefail
cd "$LAB_REPO"
. test/vm/smc-option/lib.sh
export SMC_VERBS_ADDON="$LAB_REPO/native/build/Release/smc_verbs.node"
main="node dist/sidecar/src/main.js"
O="$(smco_dir)"
PEER="$LAB_PEER_IP"
app() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }

cat >"$LAB_OUT/directory.json" <<JSON
{"version":1,"shard":0,"shards":1,"endpoints":[
 {"podIP":"10.77.0.2","node":"node1","namespace":"lab","pod":"a","tenant":"team-a","sidecarPort":15100,"allowedPeerTenants":[]}]}
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
CG=/sys/fs/cgroup/smc-sidecar
mkdir -p "$CG"
"$O/smc-option-loader" attach "$CG" >"$LAB_OUT/attach.json"
smco_in_cgroup "$CG" $main run --config "$cfg" >"$LAB_OUT/sidecar.log" 2>&1 &
sidecar=$!
lab_retry 60 curl -sf http://127.0.0.1:15021/healthz/ready >/dev/null
lab_wait_tcp "$PEER" 7000 120
lab_wait_tcp "$PEER" 7001 120
sleep 1

head -c 8388608 /dev/urandom >/tmp/payload
chmod 644 /tmp/payload
echo "UPLOAD_EXPECT $(wc -c </tmp/payload) $(sha256sum </tmp/payload | cut -d' ' -f1)"
echo "UPLOAD_REPLY $(app timeout 120 socat -t 30 -T 60 - "TCP:$PEER:7000" </tmp/payload)"
echo "DOWNLOAD_GOT $(app timeout 120 socat -u -T 60 "TCP:$PEER:7001" - | tee /tmp/down | wc -c) $(sha256sum </tmp/down | cut -d' ' -f1)"
ok=0
for i in $(seq 5); do
  r=$(head -c 1000 /tmp/payload | app timeout 60 socat -t 30 -T 60 - "TCP:$PEER:7000")
  [[ $r == *'"bytes":1000,'* ]] && ok=$((ok + 1))
done
echo "SHORT_OK $ok"
curl -sf http://127.0.0.1:15090/metrics | grep -E '^smc_(connections_total|bytes_total|link_groups)[{ ]' | sed 's/^/METRIC1 /'

# The kernel server now has another tenant's EID: it declines, and the application's bytes still
# arrive intact over TCP.
bash -c "exec 3<>/dev/tcp/$PEER/7009" || true
lab_wait_tcp "$PEER" 7010 60
echo "DECLINED_REPLY $(app timeout 120 socat -t 30 -T 60 - "TCP:$PEER:7000" </tmp/payload)"
curl -sf http://127.0.0.1:15090/metrics | grep -E '^smc_(connections_total|bytes_total|link_groups)[{ ]' | sed 's/^/METRIC2 /'
bash -c "exec 3<>/dev/tcp/$PEER/7011" || true
"$O/smc-option-loader" stats | tr -d '\n' | sed 's/^/BPF_STATS /'
echo
kill "$sidecar" || true
wait || true
"$O/smc-option-loader" detach "$CG" >/dev/null || true
$main intercept remove --config "$cfg"
echo "CLIENT_DONE"
