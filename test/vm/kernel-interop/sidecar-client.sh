#!/usr/bin/env bash
# node1 of the second test in test/vm/kernel-interop.test.ts: a "pod" whose sidecar
# (policy.kernelPeers) runs in a cgroup where the sock_ops program puts the SMC TCP option on every
# SYN (sidecar/bpf); unmodified socat as the application (uid 65534) reaches node0's kernel SMC-R
# servers, which are not in the directory: the sidecar sees the option echoed on the SYN-ACK and
# speaks SMC-Rv2 CLC to the kernel itself.
set -euo pipefail
cd "$LAB_REPO"
. test/vm/kernel-interop/lib.sh
PEER="$LAB_PEER_IP"
app() { setpriv --reuid 65534 --regid 65534 --clear-groups "$@"; }

kp_start_sidecar
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
kp_stop_sidecar
echo "CLIENT_DONE"
