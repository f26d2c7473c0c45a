// The two-node soft-RoCE lab itself: both VMs boot with rxe0 ACTIVE, see each other over eth0,
// move RDMA traffic between them (perftest), have kernel SMC, and the harness's kill and
// timeout paths work.
import { describe, expect, it } from 'vitest';
import { describeResult, removeRunDir, runLab, runLabSingle } from './lab.js';

// Retries the perftest client until the server on the peer listens (it may boot later).
const perftestClient = (tool: string, port: number, extra: string): string => `
lab_retry 60 timeout 30 ${tool} -d "$LAB_RXE" -x 1 -p ${port} ${extra} "$LAB_PEER_IP" >"$LAB_OUT/${tool}.txt" 2>&1
rc=$?
cat "$LAB_OUT/${tool}.txt"
[ "$rc" = 0 ] || { echo "${tool} client failed"; exit 1; }
`;

const node0 = `
set -u
echo "== devinfo"
ibv_devinfo -v -d "$LAB_RXE"
echo "== ping"
ping -c 3 -W 2 "$LAB_PEER_IP" || exit 1
echo "== write_bw"
${perftestClient('ib_write_bw', 18515, '-s 65536 -n 200 -F')}
echo "== send_lat"
${perftestClient('ib_send_lat', 18516, '-s 64 -n 500 -F')}
echo "== smc"
grep -E '^(smc|smc_diag) ' /proc/modules
perl -MSocket -e 'socket(my $s, 43, SOCK_STREAM, 0) or die "AF_SMC: $!\\n"; print "AF_SMC socket ok\\n"'
echo "== env"
echo "node=$LAB_NODE ip=$LAB_IP peer=$LAB_PEER_IP netdev=$LAB_NETDEV out=$LAB_OUT home=$HOME"
touch "$HOME/w" "$TMPDIR/w" && echo "home+tmp writable"
node -e 'console.log("node " + process.version)'
`;

const node1 = `
set -u
ping -c 3 -W 2 "$LAB_PEER_IP" || exit 1
timeout 90 ib_write_bw -d "$LAB_RXE" -x 1 -p 18515 -s 65536 -n 200 -F || { echo "write_bw server failed"; exit 1; }
timeout 90 ib_send_lat -d "$LAB_RXE" -x 1 -p 18516 -s 64 -n 500 -F || { echo "send_lat server failed"; exit 1; }
echo "node1 done"
`;

describe('two-node soft-RoCE VM lab', () => {
  it('boots both nodes with rxe0 ACTIVE, pings, runs perftest and has kernel SMC', async () => {
    const r = await runLab({ name: 'harness', timeoutSec: 240, scripts: [node0, node1] });
    const msg = describeResult(r);
    const [n0, n1] = r.nodes;
    expect(n0.exitCode, msg).toBe(0);
    expect(n1.exitCode, msg).toBe(0);
    expect(r.exitCode, msg).toBe(0);

    // rxe0 is up with RoCE v2 GIDs; index 1 is the IPv4-mapped one.
    expect(n0.output).toMatch(/state:\s+PORT_ACTIVE/);
    expect(n0.output).toMatch(/link_layer:\s+Ethernet/);
    expect(n0.output).toMatch(/GID\[\s*1\]:\s+::ffff:10\.77\.0\.1, RoCE v2/);

    expect(n0.output).toMatch(/3 packets transmitted, 3 (packets )?received/);
    expect(n1.output).toMatch(/3 packets transmitted, 3 (packets )?received/);

    // ib_write_bw: "#bytes #iterations BW peak BW average MsgRate".
    const bw = /^\s*65536\s+200\s+[\d.]+\s+([\d.]+)/m.exec(n0.output);
    expect(bw, msg).not.toBeNull();
    expect(Number(bw?.[1])).toBeGreaterThan(0);
    // ib_send_lat: "#bytes #iterations t_min t_max t_typical ...".
    const lat = /^\s*64\s+500\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)/m.exec(n0.output);
    expect(lat, msg).not.toBeNull();
    expect(Number(lat?.[3])).toBeGreaterThan(0);

    expect(n0.output).toMatch(/^smc /m);
    expect(n0.output).toMatch(/^smc_diag /m);
    expect(n0.output).toContain('AF_SMC socket ok');
    expect(n0.output).toContain(`node=0 ip=10.77.0.1 peer=10.77.0.2 netdev=eth0 out=${n0.outDir} home=/root`);
    expect(n0.output).toContain('home+tmp writable');
    expect(n0.output).toMatch(/^node v\d+/m);
    expect(n1.output).toContain('node1 done');

    console.log(
      `[harness] wall ${r.wallSec.toFixed(1)} s; rxe0 ACTIVE at guest uptime ` +
        `${String(n0.readyUptimeSec)} s / ${String(n1.readyUptimeSec)} s; ` +
        `write_bw ${String(bw?.[1])} MB/s, send_lat typical ${String(lat?.[3])} us`,
    );
    removeRunDir(r);
  });

  it('LAB_LINKS=2: a second NIC and rxe1 ACTIVE on each VM, carrying RDMA over that NIC', async () => {
    // node1 serves ib_write_bw on rxe1; node0 is the client over the second link's addresses.
    const second = (role: 'client' | 'server'): string => `
set -u
echo "== second link: $LAB_RXE2 on $LAB_NETDEV2 ($LAB_IP2 -> $LAB_PEER_IP2)"
cat /sys/class/infiniband/$LAB_RXE2/ports/1/state
cat /sys/class/infiniband/$LAB_RXE2/ports/1/gids/1
ip -4 route get "$LAB_PEER_IP2" | head -n 1
ping -c 3 -W 2 "$LAB_PEER_IP2" || exit 1
${
  role === 'client'
    ? `lab_retry 60 timeout 30 ib_write_bw -d "$LAB_RXE2" -x 1 -p 18517 -s 65536 -n 200 -F "$LAB_PEER_IP2" >"$LAB_OUT/bw2.txt" 2>&1
rc=$?
cat "$LAB_OUT/bw2.txt"
[ "$rc" = 0 ] || { echo "second-link write_bw client failed"; exit 1; }`
    : `timeout 90 ib_write_bw -d "$LAB_RXE2" -x 1 -p 18517 -s 65536 -n 200 -F || { echo "second-link server failed"; exit 1; }`
}
echo "== first link still: $LAB_RXE"
cat /sys/class/infiniband/$LAB_RXE/ports/1/state
`;
    const r = await runLab({
      name: 'harness-two-links',
      timeoutSec: 240,
      links: 2,
      scripts: [second('client'), second('server')],
    });
    const msg = describeResult(r);
    const [n0, n1] = r.nodes;
    expect(n0.exitCode, `${msg}\n${n0.output}`).toBe(0);
    expect(n1.exitCode, `${msg}\n${n1.output}`).toBe(0);
    for (const [n, ip, peer] of [
      [n0, '10.77.0.11', '10.77.0.12'],
      [n1, '10.77.0.12', '10.77.0.11'],
    ] as const) {
      expect(n.output).toMatch(
        new RegExp(
          `second link: rxe1 on eth\\d \\(${ip.replace(/\./g, '\\.')} -> ${peer.replace(/\./g, '\\.')}\\)`,
        ),
      );
      // Both ports ACTIVE; rxe1's GID 1 is its own IPv4-mapped address (RoCE v2).
      expect(n.output.match(/4: ACTIVE/g)?.length, n.output).toBe(2);
      expect(n.output).toContain(
        `0000:0000:0000:0000:0000:ffff:${ip
          .split('.')
          .map((x) => Number(x).toString(16).padStart(2, '0'))
          .join('')
          .replace(/^(....)/, '$1:')}`,
      );
      // The second subnet leaves through the second NIC, not eth0.
      expect(n.output).toMatch(
        new RegExp(`${peer.replace(/\./g, '\\.')} dev eth\\d src ${ip.replace(/\./g, '\\.')}`),
      );
      expect(n.output).not.toMatch(new RegExp(`${peer.replace(/\./g, '\\.')} dev eth0 `));
      expect(n.output).toMatch(/3 packets transmitted, 3 (packets )?received/);
    }
    const bw = /^\s*65536\s+200\s+[\d.]+\s+([\d.]+)/m.exec(n0.output);
    expect(bw, n0.output).not.toBeNull();
    expect(Number(bw?.[1])).toBeGreaterThan(0);
    console.log(
      `[harness] second link: write_bw ${String(bw?.[1])} MB/s over rxe1; wall ${r.wallSec.toFixed(1)} s`,
    );
    removeRunDir(r);
  });

  it('kills a node mid-run on request and the peer sees it vanish', async () => {
    const survivor = `
# The peer's kernel answers ping before its script runs; its listener proves the script started.
for i in $(seq 1 150); do timeout 1 bash -c "</dev/tcp/$LAB_PEER_IP/7000" 2>/dev/null && break; sleep 0.2; done
echo "peer up"
touch "$LAB_OUT/peer-seen"
for i in $(seq 1 60); do
  ping -c 1 -W 1 "$LAB_PEER_IP" >/dev/null || { echo "peer gone"; exit 0; }
  sleep 0.2
done
echo "peer still there"; exit 1
`;
    const victim = `
echo "victim up"
socat TCP-LISTEN:7000,fork,reuseaddr SYSTEM:true &
sleep 600
`;
    const r = await runLab({
      name: 'kill',
      timeoutSec: 120,
      scripts: [survivor, victim],
      killNodeWhen: { node: 1, inNode: 0, whenFileExists: 'peer-seen' },
    });
    const msg = describeResult(r);
    expect(r.nodes[0].exitCode, msg).toBe(0);
    expect(r.nodes[0].output).toContain('peer gone');
    expect(r.nodes[1].killed, msg).toBe(true);
    expect(r.nodes[1].exitCode).toBeNull();
    expect(r.nodes[1].output).toContain('victim up');
    expect(r.exitCode, msg).toBe(0);
    console.log(`[harness] kill run wall ${r.wallSec.toFixed(1)} s`);
    removeRunDir(r);
  });

  it('stops the other node at once when one VM crashes (a guest kernel panic)', async () => {
    const r = await runLab({
      name: 'crash',
      timeoutSec: 300,
      scripts: ['echo waiting; sleep 600', 'echo crashing; sleep 2; echo c > /proc/sysrq-trigger; sleep 600'],
    });
    const msg = describeResult(r);
    expect(r.nodes[1].status, msg).toBe('crashed');
    expect(r.nodes[1].output).toContain('crashing');
    // Stopped because of the crash, not by the run's timeout.
    expect(r.nodes[0].status, msg).toBe('stopped');
    expect(r.nodes[0].timedOut).toBe(false);
    expect(r.nodes[0].output).toContain('waiting');
    expect(r.exitCode, msg).toBe(1);
    removeRunDir(r);
  });

  it('times out a hung script and reports it', async () => {
    const r = await runLabSingle({
      name: 'timeout',
      timeoutSec: 15,
      script: 'echo started; sleep 600',
    });
    const msg = describeResult(r);
    expect(r.node.timedOut, msg).toBe(true);
    expect(r.node.exitCode).toBeNull();
    expect(r.node.output).toContain('started');
    expect(r.exitCode).toBe(124);
    expect(r.wallSec).toBeLessThan(40);
    removeRunDir(r);
  });
});
