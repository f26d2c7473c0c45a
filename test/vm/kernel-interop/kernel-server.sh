#!/usr/bin/env bash
# node0 of the second test in test/vm/kernel-interop.test.ts: a host without any sidecar running
# the Linux kernel's SMC-R servers (LD_PRELOAD smc-preload.so) with the tenant's User EID:
#   7000  socat: stores the stream, then replies one JSON line {bytes, sha256, diag: smc-stats
#         sockets} while the connection is still open
#   7001  socat: sends /tmp/payload (8 MiB)
#   7002  socat: sends its first 4 MiB; with net.smc.wmem at 4 MiB the kernel holds all of it in
#         its send buffer, so when the client does not read for a while the kernel's shutdown
#         gives up waiting (2 s) and announces the end while write-blocked, then writes the rest
#   7003  socat: reads 1000 bytes and closes with the rest unread: the kernel aborts (CDC abort
#         flag) instead of closing, as TCP resets
#   7004  socat, one connection: sends /tmp/payload; its exit code and error (the client's
#         sidecar aborts: ECONNRESET) are printed at the end
#   7006  socat: reads a byte count, sends that many bytes and closes (the close at our window's
#         edge, below)
#   7005  plain socat echo server (no SMC) in a cgroup with the sock_ops program: it echoes the
#         SMC option on its SYN-ACK without speaking SMC, so it echoes our Proposal back too
# After node1's first phase (a plain connect to 7009) it replaces its UEID with another tenant's,
# so that the next connection is declined by the kernel (no common EID), and says so on 7010.
set -euo pipefail
cd "$LAB_REPO"
. test/vm/kernel-smc/lib.sh
. test/vm/smc-option/lib.sh
B="$(ksmc_dir)"
export KSMC_BIN="$B" LAB_OUT
ueid() { node -e "import('$LAB_REPO/dist/sidecar/src/eid/tenant.js').then((m) => console.log(m.tenantUeid({ cluster: 'cluster.local', tenant: '$1' })))"; }
own=$(ueid team-a)
other=$(ueid team-b)
"$B/smc-setup" --flush-ueid --ueid "$own" --pnetid KSMCLAB --netdev "$LAB_NETDEV" --ibdev "$LAB_RXE:1" --show \
  >"$LAB_OUT/setup.json"
"$B/smc-stats" >"$LAB_OUT/stats-before.json"
head -c 8388608 /dev/urandom >/tmp/payload
echo "PAYLOAD $(wc -c </tmp/payload) $(sha256sum </tmp/payload | cut -d' ' -f1)"
head -c 4194304 /tmp/payload >/tmp/payload4
echo "PAYLOAD4 $(wc -c </tmp/payload4) $(sha256sum </tmp/payload4 | cut -d' ' -f1)"
# SMC sockets created from now on get 4 MiB send buffers (smc_sock_alloc reads it per socket).
sysctl -qw net.smc.wmem=4194304

cat >/tmp/rx.sh <<'EOS'
f=$(mktemp)
cat >"$f"
diag="$("$KSMC_BIN/smc-stats" sockets)"
printf '{"bytes":%s,"sha256":"%s","diag":%s}\n' "$(stat -c %s "$f")" "$(sha256sum <"$f" | cut -d' ' -f1)" "$diag"
rm -f "$f"
EOS
# 7004 serves one connection: it listens before the others, so the client's readiness probes
# (which wait for 7000-7003) never reach it.
(
  rc=0
  LD_PRELOAD="$B/smc-preload.so" socat -T 60 TCP-LISTEN:7004,reuseaddr SYSTEM:'cat /tmp/payload' 2>/tmp/s7004.err || rc=$?
  echo "$rc" >/tmp/s7004.rc
) &
for _ in $(seq 300); do "$B/smc-stats" sockets | grep -q '"local":"0.0.0.0:7004"' && break; sleep 0.1; done
LD_PRELOAD="$B/smc-preload.so" socat -t 30 -T 120 TCP-LISTEN:7000,reuseaddr,fork SYSTEM:'bash /tmp/rx.sh' &
up=$!
LD_PRELOAD="$B/smc-preload.so" socat -t 30 -T 120 TCP-LISTEN:7001,reuseaddr,fork SYSTEM:'cat /tmp/payload' &
down=$!
LD_PRELOAD="$B/smc-preload.so" socat -t 30 -T 120 TCP-LISTEN:7002,reuseaddr,fork SYSTEM:'cat /tmp/payload4' &
slow=$!
LD_PRELOAD="$B/smc-preload.so" socat -T 60 TCP-LISTEN:7003,reuseaddr,fork SYSTEM:'head -c 1000 >/dev/null' &
early=$!
# 7006: reads a byte count N, sends the first N bytes of `seq 1 200000` and closes.
seq 1 200000 >/tmp/edge
cat >/tmp/edge.sh <<'EOS'
read -r n
head -c "$n" /tmp/edge
EOS
LD_PRELOAD="$B/smc-preload.so" socat -t 30 -T 60 TCP-LISTEN:7006,reuseaddr,fork SYSTEM:'bash /tmp/edge.sh' &
edge=$!
O="$(smco_dir)"
mkdir -p /sys/fs/cgroup/plain-echo
"$O/smc-option-loader" attach /sys/fs/cgroup/plain-echo >/dev/null
(
  echo "$BASHPID" >/sys/fs/cgroup/plain-echo/cgroup.procs
  exec socat -T 60 TCP-LISTEN:7005,reuseaddr,fork EXEC:cat
) >/dev/null 2>&1 &
echo_srv=$!
wait1() { node -e "require('net').createServer((s)=>{s.destroy();process.exit(0)}).listen($1,'0.0.0.0');setTimeout(()=>process.exit(1),300000)"; }

wait1 7009
echo "ECHO_PEER_STATS $("$O/smc-option-loader" stats | tr -d '\n')"
echo "ABORTED_SERVER_RC $(cat /tmp/s7004.rc 2>/dev/null || echo running)"
echo "ABORTED_SERVER_ERR $(grep -m1 -o 'Connection reset by peer\|Broken pipe' /tmp/s7004.err || true)"
"$B/smc-stats" >"$LAB_OUT/stats-smc.json"
"$B/smc-setup" --remove-ueid "$own" --ueid "$other" --show >"$LAB_OUT/setup-other.json"
echo "SWITCHED $(tr -d '\n' <"$LAB_OUT/setup-other.json")"
wait1 7010
wait1 7011
"$B/smc-stats" >"$LAB_OUT/stats-end.json"
echo "STATS_BEFORE $(tr -d '\n' <"$LAB_OUT/stats-before.json")"
echo "STATS_SMC $(tr -d '\n' <"$LAB_OUT/stats-smc.json")"
echo "STATS_END $(tr -d '\n' <"$LAB_OUT/stats-end.json")"
kill "$up" "$down" "$slow" "$early" "$edge" "$echo_srv" || true
echo "SERVER_DONE"
