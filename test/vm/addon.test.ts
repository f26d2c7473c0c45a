// The verbs addon on real soft-RoCE devices, in the two-VM lab: queries and loopback on one node
// (test/vm/addon/smoke.ts), then two nodes exchanging GID/QPN/PSN/rkey/addr over TCP and moving
// data, refusing bad RDMA WRITEs, failing cleanly on bad GIDs and a vanished peer, and not leaking
// (test/vm/addon/peer.ts). The VM-side programs are transpiled to node_modules/.cache/smc-vm-lab first.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

import { describeResult, labReady, removeRunDir, runLab, runLabSingle } from './lab.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');
const addon = join(repo, 'native/build/Release/smc_verbs.node');
const jsRoot = join(repo, 'node_modules/.cache/smc-vm-lab');

type Row = Record<string, unknown> & { scenario?: string; check?: string };

function rows(output: string, prefix: string): Row[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => JSON.parse(l.slice(prefix.length)) as Row);
}

function pick(list: Row[], key: 'scenario' | 'check', name: string): Row {
  const r = list.find((x) => x[key] === name);
  if (!r) throw new Error(`no ${key} ${name} in output`);
  return r;
}

const nodeCmd = (entry: string, env = ''): string => `
export SMC_VERBS_ADDON=${join(jsRoot, 'smc_verbs.node')}
cd "$LAB_REPO"
${env}
timeout 500 node --expose-gc ${join(jsRoot, entry)}
`;

const ready = labReady() && existsSync(addon);

describe.skipIf(!ready)('verbs addon on soft-RoCE (VM lab)', () => {
  beforeAll(() => {
    execFileSync(
      'node',
      [
        join(repo, 'test/vm/addon/transpile.mjs'),
        'test/vm/addon/smoke.ts',
        'test/vm/addon/peer.ts',
        'test/vm/addon/pump.ts',
      ],
      {
        cwd: repo,
      },
    );
  });

  it('queries rxe0 and runs a loopback RC connection on one node', async () => {
    const r = await runLabSingle({
      name: 'addon-smoke',
      timeoutSec: 300,
      script: nodeCmd('test/vm/addon/smoke.js'),
      // for the REDIRECT rules of the getOriginalDst check
      extraModules: ['nf_tables', 'nft_chain_nat', 'nft_redir', 'nft_compat', 'xt_tcp', 'xt_REDIRECT'],
    });
    const msg = describeResult(r);
    expect(r.node.exitCode, msg).toBe(0);
    const lines = r.node.output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Row);
    const port = pick(lines, 'check', 'port')['port'] as Record<string, unknown>;
    expect(port).toMatchObject({ state: 'ACTIVE', linkLayer: 'Ethernet' });
    const gids = pick(lines, 'check', 'gids')['gids'] as {
      index: number;
      gid: string;
      type: string;
      netdev: string;
    }[];
    expect(gids.find((g) => g.index === 1)).toMatchObject({
      gid: '::ffff:10.77.0.1',
      type: 'RoCEv2',
      netdev: 'eth0',
    });
    expect(gids.every((g) => g.type === 'RoCEv2')).toBe(true);
    expect(pick(lines, 'check', 'pkeys')['pkeys']).toEqual([0xffff]);
    expect(pick(lines, 'check', 'send')).toMatchObject({
      ok: true,
      recv: { immData: 0xdeadbeef, byteLen: 1024 },
    });
    expect(pick(lines, 'check', 'write_imm')).toMatchObject({
      ok: true,
      recv: { opcode: 'RECV_RDMA_WITH_IMM' },
    });
    expect(pick(lines, 'check', 'inline')).toMatchObject({ recv: { status: 'IBV_WC_SUCCESS', byteLen: 32 } });
    expect(pick(lines, 'check', 'no_remote_write')).toMatchObject({
      send: { status: 'IBV_WC_REM_ACCESS_ERR' },
      unchanged: true,
      stateA: 'ERR',
    });
    // async events reach JS: netdev down -> PORT_ERR, up -> PORT_ACTIVE
    const ev = pick(lines, 'check', 'async_events');
    expect(ev['seen'], msg).toEqual(
      expect.arrayContaining(['IBV_EVENT_PORT_ERR:1', 'IBV_EVENT_PORT_ACTIVE:1']),
    );
    expect(ev).toMatchObject({ downState: 'DOWN', upState: 'ACTIVE' });
    // SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST behind REDIRECT rules
    expect(pick(lines, 'check', 'original_dst'), msg).toMatchObject({
      got: [
        { listen: '::', orig: { family: 'IPv4', address: '10.77.0.1', port: 8080 } },
        { listen: '0.0.0.0', orig: { family: 'IPv4', address: '10.77.0.1', port: 8080 } },
        { listen: '::', dest: '::1', orig: { family: 'IPv6', address: '::1', port: 8080 } },
      ],
    });
    expect(pick(lines, 'check', 'close')).toMatchObject({
      busy: 'EBUSY',
      releasePinned: 'EBUSY',
      releasedReadsZero: true,
      counters: { contexts: 0, pds: 0, mrs: 0, channels: 0, cqs: 0, qps: 0 },
    });
    removeRunDir(r);
  });

  it('two nodes: data, access errors, bad GIDs, leaks and a vanished peer', async () => {
    const script = nodeCmd('test/vm/addon/peer.js', 'export PEER_LEAK_CYCLES=1000');
    const r = await runLab({ name: 'addon-peer', timeoutSec: 600, scripts: [script, script] });
    const msg = describeResult(r);
    const [n0, n1] = r.nodes;
    expect(n0.exitCode, msg).toBe(0);
    expect(n1.killed, msg).toBe(true); // node1 powers itself off in the last scenario
    const init = rows(n0.output, 'RESULT ');
    const target = rows(n1.output, 'RESULT ');
    const both = (s: string): [Row, Row] => [pick(init, 'scenario', s), pick(target, 'scenario', s)];

    // SEND / SEND_WITH_IMM with 3-entry scatter lists into 2-entry receive lists.
    const [si, st] = both('send_recv');
    expect(st['hash'], msg).toBe(si['hash']);
    expect(st).toMatchObject({ messages: 32, opcodes: ['RECV'], lastImm: 0xc0ffee });

    // 1 MiB RDMA WRITE (+ WITH_IMM at the end).
    const [wi, wt] = both('rdma_write');
    expect(wt['hash'], msg).toBe(wi['hash']);
    expect(wt).toMatchObject({ opcode: 'RECV_RDMA_WITH_IMM', immData: 7 });

    // 2000 completions each side through the completion channel.
    const [mi, mt] = both('many_sends');
    expect(mi).toMatchObject({ count: 2000 });
    expect(mt).toMatchObject({ count: 2000, bytes: 2000 * 64 });

    // Refused RDMA WRITEs; target memory unchanged.
    const [sec, sect] = both('security');
    expect(sec['statuses'], msg).toEqual({
      wrong_rkey: 'IBV_WC_REM_ACCESS_ERR',
      beyond_end: 'IBV_WC_REM_ACCESS_ERR',
      mr_no_remote_write: 'IBV_WC_REM_ACCESS_ERR',
      // The QP itself does not allow remote write: rxe answers with an invalid-request NAK.
      qp_no_remote_write: 'IBV_WC_REM_INV_REQ_ERR',
    });
    expect(sect['unchanged'], msg).toBe(true);

    // A QP of one PD cannot use an MR of another: the send fails locally, nothing is received.
    // rxe 6.12 reports the failed WR as IBV_WC_WR_FLUSH_ERR (the QP goes to ERR first); a
    // hardware HCA reports IBV_WC_LOC_PROT_ERR.
    const [xi, xt] = both('cross_pd');
    expect(['IBV_WC_LOC_PROT_ERR', 'IBV_WC_WR_FLUSH_ERR']).toContain(xi['status']);
    expect(xi['qpState']).toBe('ERR');
    expect(xt).toMatchObject({ received: false, recvStatus: 'IBV_WC_WR_FLUSH_ERR' });

    // Bad GIDs fail at INIT->RTR on rxe (address resolution), with a typed error.
    const bad = pick(init, 'scenario', 'bad_gid')['cases'] as Record<string, { modify: string }>;
    expect(bad['unreachable_in_subnet']?.modify, msg).toBe('ETIMEDOUT');
    expect(bad['no_route']?.modify, msg).toMatch(/^E/);
    expect(bad['zero_gid']?.modify).toBe('EINVAL');
    expect(bad['bad_sgid_index']?.modify).toBe('ENODATA');

    // No leaks: 1000 pd/mr/cq/channel/qp cycles back to the baseline; dropped objects collected.
    for (const l of both('leak')) {
      expect(l['after'], msg).toEqual(l['base']);
      const { buffers: _b1, ...base } = l['base'] as Record<string, number>;
      const { buffers: _b2, ...afterGc } = l['afterGc'] as Record<string, number>;
      expect(afterGc, msg).toEqual(base);
      expect(l['rssGrowthAfterWarmupKiB'] as number).toBeLessThan(32 * 1024);
    }

    // The peer's VM is killed: retries run out and both WRs complete in error, no hang.
    const death = pick(init, 'scenario', 'peer_death');
    expect(death, msg).toMatchObject({
      write: 'IBV_WC_RETRY_EXC_ERR',
      send: 'IBV_WC_WR_FLUSH_ERR',
      qpState: 'ERR',
    });
    expect(death['ms'] as number).toBeLessThan(60_000);
    removeRunDir(r);
  });

  it('data pump: two TCP connections bridged over RDMA, both directions, FIN and RST', async () => {
    const script = nodeCmd('test/vm/addon/pump.js', 'export PUMP_BYTES=4194304 PUMP_RMBE=65536');
    const r = await runLab({ name: 'addon-pump', timeoutSec: 400, scripts: [script, script] });
    const msg = describeResult(r);
    expect(r.nodes[0].exitCode, msg).toBe(0);
    expect(r.nodes[1].exitCode, msg).toBe(0);
    const init = rows(r.nodes[0].output, 'RESULT ');
    const target = rows(r.nodes[1].output, 'RESULT ');
    const [bi, bt] = [pick(init, 'scenario', 'bulk'), pick(target, 'scenario', 'bulk')];
    expect(bi['received'], msg).toBe(4 * 1024 * 1024);
    expect(bt['received'], msg).toBe(4 * 1024 * 1024);
    expect(bt['receivedHash'], msg).toBe(bi['sentHash']);
    expect(bi['receivedHash'], msg).toBe(bt['sentHash']);
    for (const x of [bi, bt]) {
      expect(x, msg).toMatchObject({ end: 'closed', state: 'closed', stats: { badCdc: 0 } });
      expect([...(x['events'] as string[])].sort()).toEqual(['eof', 'peerDone']);
    }
    // Memory of another protection domain never backs a pump.
    for (const rows_ of [init, target])
      expect(pick(rows_, 'scenario', 'foreign-pd'), msg).toMatchObject({
        code: 'EINVAL',
        message: expect.stringMatching(/protection domain/),
      });
    // node0's application resets its connection: node1's application sees the reset.
    const [ai, at] = [pick(init, 'scenario', 'abort'), pick(target, 'scenario', 'abort')];
    expect(ai, msg).toMatchObject({ end: 'aborted', detail: { code: 'ECONNRESET' } });
    expect(at, msg).toMatchObject({ end: 'aborted', detail: { reason: 'peer abort' }, appSaw: 'ECONNRESET' });
    for (const d of [pick(init, 'scenario', 'done'), pick(target, 'scenario', 'done')]) {
      expect(d['counters'], msg).toMatchObject({ contexts: 0, pds: 0, mrs: 0, cqs: 0, qps: 0, pumps: 0 });
    }
    removeRunDir(r);
  });
});
