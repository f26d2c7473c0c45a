# Both nodes of test/vm/kernel-smc.test.ts "two links" (lab-run with LAB_LINKS=2): kernel SMC-R
# with a second RoCE device (rxe1) under the same pnetid. node0 serves smc-perf; node1 runs a
# ping-pong. Each node waits until its link group lists a link on rxe1 (the server's ADD LINK,
# answered by the client) and prints `LINKS {smc-stats lgr links}`; exits 1 if none comes.
set -u
. "$LAB_REPO/test/vm/kernel-smc/lib.sh"
B="$(ksmc_dir)" || { echo "kernel-smc tools not found"; exit 1; }
"$B/smc-setup" --lab >/dev/null || { echo "smc-setup --lab failed"; exit 1; }
"$B/smc-setup" --pnetid KSMCLAB --netdev "$LAB_NETDEV2" --ibdev "$LAB_RXE2:1" >/dev/null ||
  { echo "smc-setup for $LAB_RXE2 failed"; exit 1; }
two_links() {
  local i
  for i in $(seq 1 150); do
    "$B/smc-stats" links | grep -q "\"ibdev\":\"$LAB_RXE2\"" && { echo "LINKS $("$B/smc-stats" lgr links)"; return 0; }
    sleep 0.2
  done
  echo "no link on $LAB_RXE2 within 30 s: $("$B/smc-stats" lgr links)"
  return 1
}
rc=0
if [[ $LAB_NODE == 0 ]]; then
  LD_PRELOAD="$B/smc-preload.so" timeout 100 "$B/smc-perf" server -p 7001 &
  lab_wait_tcp 127.0.0.1 7001 30
  for _ in $(seq 1 300); do "$B/smc-stats" links | grep -q '"ibdev"' && break; sleep 0.2; done
  two_links || rc=1
  wait
else
  lab_wait_tcp "$LAB_PEER_IP" 7001 60
  LD_PRELOAD="$B/smc-preload.so" timeout 90 "$B/smc-perf" rtt "$LAB_PEER_IP" -p 7001 -s 64 -n 3000 -w 0 >"$LAB_OUT/rtt.out" 2>&1 &
  perf=$!
  two_links || rc=1
  wait "$perf" || { echo "ping-pong failed: $(tail -n 3 "$LAB_OUT/rtt.out")"; rc=1; }
  grep '^{' "$LAB_OUT/rtt.out" | tail -n 1
  LD_PRELOAD="$B/smc-preload.so" timeout 20 "$B/smc-perf" quit "$LAB_PEER_IP" -p 7001 >/dev/null 2>&1 || true
fi
exit "$rc"
