# node1 of test/vm/smc-option.test.ts: the listening side. Sourced by the test's inline script
# with KSMC_DIR, SMCO_DIR and SMCO_DECLINE_HEX (a CLC Decline encoded by the protocol library).
# Serves three ports:
#   7100  smc-opt-probe inside cgroup smcopt-srv, where the sock_ops program is attached with
#         --lport 7100: its SYN-ACK carries the SMC option when the SYN did; it answers a CLC
#         Proposal with the Decline, then takes the application bytes (2 connections)
#   7101  smc-opt-probe outside any BPF cgroup: a plain listener with TCP_SAVE_SYN (2 connections)
#   7102  as 7100 (selected by --lport 7102), but without TCP_SAVE_SYN, and nftables drops its
#         first SYN-ACK: the retransmitted one is sent without the SYN at hand, so the program
#         decides from its map entry (1 connection)
#   7200  kernel SMC server: socat under the preload shim (AF_SMC listener); per connection
#         stores the stream, takes `smc-stats sockets` while the connection is open and replies
#         with one JSON line {"seq","peer_port","bytes","data","diag"}
#   7990  "ready" port for node0
# Writes to $LAB_OUT: setup.json, attach.json, stats-before.json, stats-after.json,
# conns-710{0,1,2}.jsonl, server-conns.jsonl, bpf-conns.json, bpf-stats.json, nft.json.
# Needs the nf_tables and nft_quota modules (the test passes extraModules).
set -u
. "$LAB_REPO/test/vm/kernel-smc/lib.sh"
. "$LAB_REPO/test/vm/smc-option/lib.sh"
B="$(ksmc_dir)" || { echo "kernel-smc tools not found"; exit 1; }
O="$(smco_dir)" || exit 1
DECL="${SMCO_DECLINE_HEX:?}"
CG=/sys/fs/cgroup/smcopt-srv
export KSMC_BIN="$B" LAB_OUT

"$B/smc-setup" --lab --show >"$LAB_OUT/setup.json" || { echo "smc-setup failed"; exit 1; }
mkdir -p "$CG"
"$O/smc-option-loader" attach "$CG" --lport 7100 --lport 7102 >"$LAB_OUT/attach.json" ||
  { echo "attach failed"; exit 1; }
# Drop the first SYN-ACK from port 7102 (68 bytes with the option; "until 100 bytes" matches once).
nft add table inet smco &&
  nft 'add chain inet smco out { type filter hook output priority 0; }' &&
  nft 'add rule inet smco out tcp sport 7102 tcp flags & (syn|ack) == syn|ack quota until 100 bytes counter drop' ||
  { echo "nft failed"; exit 1; }
cat "$LAB_OUT/attach.json"
"$B/smc-stats" stats fallback >"$LAB_OUT/stats-before.json" || exit 1

smco_in_cgroup "$CG" timeout 50 "$O/smc-opt-probe" listen 7100 --count 2 --decline-hex "$DECL" \
  >"$LAB_OUT/conns-7100.jsonl" &
p7100=$!
timeout 50 "$O/smc-opt-probe" listen 7101 --count 2 --decline-hex "$DECL" >"$LAB_OUT/conns-7101.jsonl" &
p7101=$!
smco_in_cgroup "$CG" timeout 50 "$O/smc-opt-probe" listen 7102 --count 1 --no-save-syn --decline-hex "$DECL" \
  >"$LAB_OUT/conns-7102.jsonl" &
p7102=$!

cat >/tmp/rx.sh <<'EOS'
seq=$(($(cat /tmp/rx.seq 2>/dev/null || echo 0) + 1))
echo "$seq" >/tmp/rx.seq
data="$(head -c 200 | tr -cd 'A-Za-z0-9_-')"
diag="$("$KSMC_BIN/smc-stats" sockets)"
printf '{"seq":%s,"peer_port":%s,"data":"%s","diag":%s}\n' "$seq" "$SOCAT_PEERPORT" "$data" "$diag" |
  tee -a "$LAB_OUT/server-conns.jsonl"
EOS
LD_PRELOAD="$B/smc-preload.so" timeout 50 socat -t 10 -T 30 TCP-LISTEN:7200,reuseaddr,fork SYSTEM:'bash /tmp/rx.sh' &
p7200=$!

for _ in $(seq 100); do
  [[ $(ss -Hltn 'sport = :7100 or sport = :7101 or sport = :7102 or sport = :7200' | wc -l) -ge 4 ]] && break
  sleep 0.1
done
timeout 50 socat -u TCP-LISTEN:7990,reuseaddr,fork OPEN:/dev/null &
pready=$!
echo "node1 listening"

rc=0
wait "$p7100" || { echo "probe 7100 failed: $?"; rc=1; }
wait "$p7101" || { echo "probe 7101 failed: $?"; rc=1; }
wait "$p7102" || { echo "probe 7102 failed: $?"; rc=1; }
for _ in $(seq 300); do
  [[ $(cat "$LAB_OUT/server-conns.jsonl" 2>/dev/null | wc -l) -ge 3 ]] && break
  sleep 0.1
done
kill "$p7200" "$pready" 2>/dev/null
"$B/smc-stats" stats fallback >"$LAB_OUT/stats-after.json"
"$O/smc-option-loader" dump >"$LAB_OUT/bpf-conns.json"
"$O/smc-option-loader" stats >"$LAB_OUT/bpf-stats.json"
nft -j list chain inet smco out >"$LAB_OUT/nft.json"
cat "$LAB_OUT/bpf-stats.json"
echo "node1 done rc=$rc"
exit "$rc"
