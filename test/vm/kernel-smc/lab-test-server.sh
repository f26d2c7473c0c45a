# node1 of test/vm/kernel-smc.test.ts: the server side of kernel-to-kernel SMC-R.
# Sourced by the test's inline script (KSMC_DIR set). Writes to $LAB_OUT:
#   setup.json         smc-setup --show after setting UEID KSMC-LAB and pnetid KSMCLAB
#   stats-before.json, stats-after.json   smc-stats around everything
# Serves two ports, both under the preload shim (so both listen on SMC sockets):
#   7000  socat, one child per connection: stores the stream, then (connection still open)
#         replies with one JSON line {"seq", "peer_port", "bytes", "sha256", "diag": smc-stats sockets}
#   7001  smc-perf server; the client ends the run with `smc-perf quit` there.
set -u
. "$LAB_REPO/test/vm/kernel-smc/lib.sh"
B="$(ksmc_dir)" || { echo "kernel-smc tools not found"; exit 1; }
export KSMC_BIN="$B" LAB_OUT
"$B/smc-setup" --lab --show >"$LAB_OUT/setup.json" || { echo "smc-setup failed"; exit 1; }
"$B/smc-stats" >"$LAB_OUT/stats-before.json" || exit 1

cat >/tmp/rx.sh <<'EOS'
seq=$(($(cat /tmp/rx.seq 2>/dev/null || echo 0) + 1))
echo "$seq" >/tmp/rx.seq
f=/tmp/rx.$seq
cat >"$f"
diag="$("$KSMC_BIN/smc-stats" sockets)"
sum="$(sha256sum <"$f" | cut -d' ' -f1)"
printf '{"seq":%s,"peer_port":%s,"bytes":%s,"sha256":"%s","diag":%s}\n' \
  "$seq" "$SOCAT_PEERPORT" "$(stat -c %s "$f")" "$sum" "$diag" | tee -a "$LAB_OUT/server-conns.jsonl"
rm -f "$f"
EOS
export LD_PRELOAD="$B/smc-preload.so"
socat -t 30 -T 120 TCP-LISTEN:7000,reuseaddr,fork SYSTEM:'bash /tmp/rx.sh' &
socat_pid=$!
timeout 240 "$B/smc-perf" server -p 7001
rc=$?
unset LD_PRELOAD
kill "$socat_pid" 2>/dev/null
"$B/smc-stats" >"$LAB_OUT/stats-after.json"
echo "server done rc=$rc"
exit "$rc"
