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
lab_wait_tcp "$PEER" 7002 120
lab_wait_tcp "$PEER" 7003 120
lab_wait_tcp "$PEER" 7005 120
lab_wait_tcp "$PEER" 7006 120
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

# The application does not read for 6 s: the kernel's shutdown announces the end while
# write-blocked, with data still queued, which must all arrive before our end of file.
echo "SLOW_GOT $(app timeout 120 socat -u -T 60 "TCP:$PEER:7002,rcvbuf=65536" - | { sleep 6; cat; } | tee /tmp/slow | wc -c) $(sha256sum </tmp/slow | cut -d' ' -f1)"

# The kernel's close at our window's edge, many times, no hold-back: each answer is a multiple of
# our 64 KiB RMBE, so the kernel's last write often fills our window exactly and its done-writing
# then carries a stale write-blocked flag with nothing queued behind it (docs/sidecar.md). Every
# byte must arrive, then the end of file.
seq 1 200000 >/tmp/edge
edge_ok=0
edge_bad=""
edge_max=0
edge_sum=0
for i in $(seq "${EDGE_N:-40}"); do
  n=$(((i % 4 + 1) * 65536))
  t0=$(date +%s%N)
  got=$(printf '%s\n' "$n" | app timeout 60 socat -t 30 -T 60 - "TCP:$PEER:7006" | sha256sum | cut -d' ' -f1)
  ms=$((($(date +%s%N) - t0) / 1000000))
  edge_sum=$((edge_sum + ms))
  ((ms > edge_max)) && edge_max=$ms
  if [ "$got" = "$(head -c "$n" /tmp/edge | sha256sum | cut -d' ' -f1)" ]; then
    edge_ok=$((edge_ok + 1))
  else
    edge_bad="$edge_bad $i:$n"
  fi
done
echo "EDGE_OK $edge_ok"
echo "EDGE_BAD${edge_bad:- none}"
echo "EDGE_MS avg $((edge_sum / ${EDGE_N:-40})) max $edge_max"

# Abort by the kernel: its application closes with our data unread; ours sees a reset, at once.
rc=0
head -c 33554432 /dev/zero | app timeout 60 socat -u - "TCP:$PEER:7003" 2>/tmp/kabort.err || rc=$?
echo "KERNEL_ABORT_RC $rc"
echo "KERNEL_ABORT_ERR $(grep -m1 -o 'Connection reset by peer\|Broken pipe' /tmp/kabort.err || true)"

# Abort by us: our application reads 1000 bytes and closes with the rest unread (a TCP reset to
# our sidecar); the kernel's application sees ECONNRESET (printed by node0 as ABORTED_SERVER_*).
echo "OUR_ABORT_GOT $(app timeout 60 socat -u -T 60 "TCP:$PEER:7004" - 2>/dev/null | head -c 1000 | wc -c)"
sleep 2
echo "PUMP_ABORTS $(kp_pump_aborts)"
curl -sf http://127.0.0.1:15190/metrics | grep -E '^smc_(connections_total|bytes_total|link_groups)[{ ]' | sed 's/^/METRIC1 /'

# A server that echoes the SMC option without speaking SMC (node0's plain echo server under the
# sock_ops program): it echoes our Proposal instead of answering it. The application's 1 MiB
# still comes back intact (a new plain connection), and the next connection to it carries no
# option at all.
head -c 1048576 /tmp/payload >/tmp/payload1m
echo "ECHO_EXPECT $(sha256sum </tmp/payload1m | cut -d' ' -f1)"
for i in 1 2; do
  echo "ECHO_GOT$i $(app timeout 60 socat -t 30 -T 60 - "TCP:$PEER:7005" </tmp/payload1m | sha256sum | cut -d' ' -f1)"
done
curl -sf http://127.0.0.1:15190/metrics | grep -E '^smc_connections_total[{ ]' | sed 's/^/METRIC_ECHO /'
"$O/smc-option-loader" stats | tr -d '\n' | sed 's/^/BPF_STATS_ECHO /'
echo

# The kernel server now has another tenant's EID: it declines, and the application's bytes still
# arrive intact over TCP.
bash -c "exec 3<>/dev/tcp/$PEER/7009" || true
lab_wait_tcp "$PEER" 7010 60
echo "DECLINED_REPLY $(app timeout 120 socat -t 30 -T 60 - "TCP:$PEER:7000" </tmp/payload)"
curl -sf http://127.0.0.1:15190/metrics | grep -E '^smc_(connections_total|bytes_total|link_groups)[{ ]' | sed 's/^/METRIC2 /'
bash -c "exec 3<>/dev/tcp/$PEER/7011" || true
"$O/smc-option-loader" stats | tr -d '\n' | sed 's/^/BPF_STATS /'
echo
kp_stop_sidecar
echo "CLIENT_DONE"
