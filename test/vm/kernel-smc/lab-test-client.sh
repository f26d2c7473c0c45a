# node0 of test/vm/kernel-smc.test.ts: the client side. Sends a 4 MiB random payload three
# times with socat under the preload shim to node1:7000, changing only the client's UEID:
#   phase nueid     no UEID            -> the client cannot propose SMC-Rv2: TCP fallback
#   phase mismatch  UEID KSMC-OTHER    -> the server finds no common EID: TCP fallback
#   phase smc       UEID KSMC-LAB      -> SMC-R
# then a ping-pong with smc-perf (its --exec takes smc-stats of the live socket) and
# `smc-perf quit`. Writes to $LAB_OUT: payload.sha256, stats-<phase>.json (after each phase,
# stats-start.json before), reply-<phase>.json (the server's line), setup-<phase>.json,
# client-diag.json, rtt.json.
set -u
. "$LAB_REPO/test/vm/kernel-smc/lib.sh"
B="$(ksmc_dir)" || { echo "kernel-smc tools not found"; exit 1; }
PEER="$LAB_PEER_IP"
PRE="$B/smc-preload.so"
"$B/smc-setup" --flush-ueid --pnetid KSMCLAB --netdev "$LAB_NETDEV" --ibdev "$LAB_RXE:1" \
  --show >"$LAB_OUT/setup-nueid.json" || { echo "smc-setup failed"; exit 1; }
head -c 4194304 /dev/urandom >/tmp/payload
sha256sum </tmp/payload | cut -d' ' -f1 >"$LAB_OUT/payload.sha256"
"$B/smc-stats" >"$LAB_OUT/stats-start.json" || exit 1

send() { # send PHASE: payload to node1:7000, the server's reply line to reply-PHASE.json
  local phase=$1 t0 t1
  t0=$(date +%s.%N)
  # lab_retry: node1 may not listen yet (refused connects never reach SMC's handshake).
  lab_retry 90 timeout 60 env LD_PRELOAD="$PRE" socat -t 30 -T 60 - "TCP:$PEER:7000" \
    </tmp/payload >"$LAB_OUT/reply-$phase.json" || { echo "send $phase failed"; exit 1; }
  t1=$(date +%s.%N)
  "$B/smc-stats" >"$LAB_OUT/stats-$phase.json"
  echo "phase $phase: $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s"
}

send nueid
"$B/smc-setup" --ueid KSMC-OTHER --show >"$LAB_OUT/setup-mismatch.json" || exit 1
send mismatch
"$B/smc-setup" --remove-ueid KSMC-OTHER --ueid KSMC-LAB --show >"$LAB_OUT/setup-smc.json" || exit 1
send smc

LD_PRELOAD="$PRE" timeout 60 "$B/smc-perf" rtt "$PEER" -p 7001 -n 200 -w 20 -r 30 -l smc \
  --exec "$B/smc-stats sockets >$LAB_OUT/client-diag.json" >"$LAB_OUT/rtt.json" || { echo "rtt failed"; exit 1; }
cat "$LAB_OUT/rtt.json"
"$B/smc-stats" >"$LAB_OUT/stats-end.json"
timeout 30 "$B/smc-perf" quit "$PEER" -p 7001 --smc || { echo "quit failed"; exit 1; }
echo "client done"
