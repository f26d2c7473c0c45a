#!/usr/bin/env bash
# node1 of the first test in test/vm/kernel-interop.test.ts: a host without any sidecar that runs the Linux kernel's
# SMC-R (smc-tools' smc_run equivalent: LD_PRELOAD smc-preload.so) with the tenant's User EID and a
# pnetid. Unmodified curl uploads and downloads 8 MiB to node0's app through node0's sidecar;
# smc-stats (netlink + smc_diag) record the kernel's side.
set -euo pipefail
cd "$LAB_REPO"
. test/vm/kernel-smc/lib.sh
B="$(ksmc_dir)"
PEER="$LAB_PEER_IP"
run_smc() { LD_PRELOAD="$B/smc-preload.so" "$@"; }

ueid=$(node -e "import('$LAB_REPO/dist/sidecar/src/eid/tenant.js').then((m) => console.log(m.tenantUeid({ cluster: 'cluster.local', tenant: 'team-a' })))")
echo "UEID $ueid"
"$B/smc-setup" --flush-ueid --ueid "$ueid" --pnetid KSMCLAB --netdev "$LAB_NETDEV" --ibdev "$LAB_RXE:1" --show \
  >"$LAB_OUT/setup.json"
echo "SETUP $(tr -d '\n' <"$LAB_OUT/setup.json")"
lab_wait_tcp "$PEER" 8080 120
sleep 2
"$B/smc-stats" >"$LAB_OUT/stats-before.json"

head -c 8388608 /dev/urandom >/tmp/payload
echo "UPLOAD_EXPECT $(wc -c </tmp/payload) $(sha256sum </tmp/payload | cut -d' ' -f1)"
echo "UPLOAD_GOT $(run_smc timeout 120 curl -sS --data-binary @/tmp/payload "http://$PEER:8080/upload")"
"$B/smc-stats" >"$LAB_OUT/stats-upload.json"

# The download runs in the background so that smc_diag sees the live socket.
run_smc timeout 120 curl -sS "http://$PEER:8080/download?n=8388608" -o /tmp/down &
dl=$!
for _ in $(seq 40); do
  "$B/smc-stats" sockets >"$LAB_OUT/diag-live.json" || true
  grep -q '"SMCR"' "$LAB_OUT/diag-live.json" && break
  sleep 0.1
done
wait "$dl"
echo "DOWNLOAD_GOT $(wc -c </tmp/down) $(sha256sum </tmp/down | cut -d' ' -f1)"
"$B/smc-stats" >"$LAB_OUT/stats-after.json"

# Several short connections: one link group.
ok=0
for i in $(seq 10); do
  run_smc timeout 60 curl -sS "http://$PEER:8080/short$i" | grep -q "^pod-b /short$i" && ok=$((ok + 1))
done
echo "SHORT_OK $ok"
"$B/smc-stats" >"$LAB_OUT/stats-end.json"

# Abort by the kernel: curl stops reading an endless download after 1000 bytes and closes with
# data unread (the kernel sends the CDC abort flag). Abort by us: the application resets its
# connection at the first bytes of a 32 MiB upload (our sidecar sends the abort flag); the
# kernel's curl must fail at once, not hang.
echo "KERNEL_ABORT_GOT $(run_smc timeout 60 curl -sS "http://$PEER:8080/endless" 2>/dev/null | head -c 1000 | wc -c)"
rc=0
head -c 33554432 /dev/zero | run_smc timeout 60 curl -sS --data-binary @- "http://$PEER:8080/reset" >/dev/null 2>/tmp/reset.err || rc=$?
echo "OUR_ABORT_RC $rc"
echo "OUR_ABORT_ERR $(head -c 200 /tmp/reset.err | tr -d '\n')"

# A client that announces SMC in its SYN without speaking it: plain curl (no smc-preload) in a
# cgroup where the sock_ops program puts the option on every SYN. The sidecar sees the option,
# then an HTTP request where a Proposal belongs, and relays it as it came.
. test/vm/smc-option/lib.sh
O="$(smco_dir)"
mkdir -p /sys/fs/cgroup/plain-client
"$O/smc-option-loader" attach /sys/fs/cgroup/plain-client >/dev/null
echo "PLAIN_OPT_GOT $(smco_in_cgroup /sys/fs/cgroup/plain-client timeout 60 curl -sS "http://$PEER:8080/plain-with-option")"
echo "PLAIN_OPT_STATS $("$O/smc-option-loader" stats | tr -d '\n')"
echo "STATS_BEFORE $(tr -d '\n' <"$LAB_OUT/stats-before.json")"
echo "STATS_AFTER $(tr -d '\n' <"$LAB_OUT/stats-after.json")"
echo "STATS_END $(tr -d '\n' <"$LAB_OUT/stats-end.json")"
echo "DIAG_LIVE $(tr -d '\n' <"$LAB_OUT/diag-live.json")"
bash -c "exec 3<>/dev/tcp/$PEER/15999" || true
echo "CLIENT_DONE"
