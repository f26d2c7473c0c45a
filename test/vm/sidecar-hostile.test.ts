// Hostile input against a real server sidecar in the two-VM soft-RoCE lab: a peer sending
// malformed CLC, Proposals the sidecar must decline (SMC-R v1 only, another tenant's User EID),
// malformed LLC or CDC messages, a producer cursor past the RMBE or a wrong alert token gets a
// Decline or an abort, the sidecar keeps running, and a legitimate SMC-R transfer in flight at the
// same time (curl through both sidecars, 16 MiB, sha256) is untouched.
// node0: sidecar (dataPath native) + app-server.mjs + a line echo app. node1: sidecar with
// nftables interception + curl, and the hostile client (test/vm/hostile/hostile-node.ts, a
// hand-driven SMC-Rv2 peer on its own RC QPs: v2 Proposal with the tenant's UEID, v2 Accept and
// Confirm, LLC CONFIRM LINK v2) talking to node0's SMC port from twelve extra source addresses,
// one per case, so every case is a first contact. VM scripts: test/vm/hostile/.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { SMC_CLC_DECL } from '../../sidecar/src/protocol/clc/decline-codes.js';
import { ensureBuilt, REPO } from '../../sidecar/src/testing/build.js';
import { describeResult, labReady, runLab } from './lab.js';

const addon = join(REPO, 'native/build/Release/smc_verbs.node');
const NFT_MODULES = ['nf_tables', 'nf_conntrack', 'nf_nat', 'nft_chain_nat', 'nft_redir', 'nft_ct'];
const script = (role: string): string => `bash test/vm/hostile/hostile-node.sh ${role}`;
const MIB = 2 ** 20;

type Row = Record<string, unknown>;

function rows(output: string): Row[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('RESULT '))
    .map((l) => JSON.parse(l.slice('RESULT '.length)) as Row);
}

function lineValue(output: string, key: string): string | undefined {
  const line = output.split('\n').find((l) => l.startsWith(`${key} `));
  return line?.slice(key.length + 1);
}

function metric(output: string, series: string): number {
  const v = lineValue(output, `METRIC ${series}`);
  return v === undefined ? 0 : Number(v);
}

const hex = (code: number): string => `0x${code.toString(16).padStart(8, '0')}`;

describe.skipIf(!labReady() || !existsSync(addon))('sidecar under hostile SMC-R input (VM lab)', () => {
  beforeAll(async () => {
    await ensureBuilt(
      ['dist/sidecar/src/main.js', 'dist/test/vm/hostile/hostile-node.js'],
      ['sidecar/src', 'native', 'operator/src/api', 'test/vm/hostile'],
    );
  }, 300_000);

  it('declines or aborts malformed CLC, LLC and CDC input, bad cursors and wrong tokens; keeps serving a concurrent SMC-R transfer', async () => {
    const r = await runLab({
      name: 'sidecar-hostile',
      timeoutSec: 720,
      scripts: [script('server'), script('client')],
      extraModules: NFT_MODULES,
    });
    const msg = describeResult(r);
    const [server, client] = r.nodes;
    const out = client.output;
    const srv = server.output;
    const ctx = `${msg}\n--- node1 ---\n${out}\n--- node0 ---\n${srv}`;
    expect(server.exitCode, ctx).toBe(0);
    expect(client.exitCode, ctx).toBe(0);
    expect(lineValue(out, 'ATTACK_EXIT'), ctx).toBe('0');
    const results = rows(out);
    const clc = (name: string): Row | undefined =>
      results.find((x) => x['check'] === 'clc' && x['case'] === name);
    const rdma = (name: string): Row | undefined =>
      results.find((x) => x['check'] === 'rdma' && x['case'] === name);

    // 1. Malformed CLC: a Decline with the code the kernel would use, then (after our own Decline)
    // the agreed TCP fallback reaches the application; or a reset where no Decline can follow.
    const syncerr = { code: hex(SMC_CLC_DECL.SYNCERR), outOfSync: true };
    for (const name of ['garbage', 'bad-eyecatcher', 'length-too-short']) {
      const c = clc(name);
      expect(c?.['decline'], `${name}\n${ctx}`).toMatchObject(syncerr);
      expect(c?.['relay'], `${name}\n${ctx}`).toBe(`ECHO TAG ${name}`);
    }
    expect(clc('unknown-version')?.['decline'], ctx).toMatchObject({
      code: hex(SMC_CLC_DECL.VERSMISMAT),
      outOfSync: false,
    });
    expect(clc('unknown-version')?.['relay'], ctx).toBe('ECHO TAG unknown-version');
    // Well-formed Proposals the server must decline (SMC-Rv2 only, with a User EID in common):
    // an SMC-R v1 Proposal (no EIDs at all) and an SMC-Rv2 Proposal with another tenant's EID from
    // an address the directory lists as our tenant. NOUEID (no EID at all) and NOSMCDEV (no EID in
    // common, the kernel's code) in the Proposal's version, then the plain relay.
    expect(clc('v1-only')?.['decline'], ctx).toMatchObject({
      code: hex(SMC_CLC_DECL.NOUEID),
      outOfSync: false,
      version: 1,
    });
    expect(clc('other-tenant-eid')?.['decline'], ctx).toMatchObject({
      code: hex(SMC_CLC_DECL.NOSMCDEV),
      outOfSync: false,
      version: 2,
    });
    for (const name of ['v1-only', 'other-tenant-eid'])
      expect(clc(name)?.['relay'], `${name}\n${ctx}`).toBe(`ECHO TAG ${name}`);
    // A length field promising more than arrives: the server waits for the rest, then times out.
    expect(clc('length-too-long')?.['decline'], ctx).toMatchObject({
      code: hex(SMC_CLC_DECL.TIMEOUT),
      outOfSync: false,
    });
    // A broken preamble: reset, nothing sent back.
    expect(clc('bad-preamble'), ctx).toMatchObject({ answer: null, ended: 'reset', extraBytes: 0 });
    // Half a Proposal, then FIN: a reset at once, no Decline and no wait for the CLC timeout
    // (clcHandshakeMs 15 s), also when the FIN arrives with the preamble, before the CLC stage
    // listens for it.
    // (Before, the server sent a TIMEOUT Decline after clcHandshakeMs: `answer` would hold it.)
    expect(clc('truncated-then-close'), ctx).toMatchObject({ answer: null, ended: 'reset', extraBytes: 0 });

    // 2. Each RDMA case starts with a correct SMC-Rv2 first contact: a v2 Accept of release 1
    // (v2.1) with the sidecars' limits (255 connections, one link), then CONFIRM LINK in the v2
    // layout (type 0x21) with the same limits.
    const v2 = {
      accept: { version: 2, release: 1 },
      limits: { release: 1, maxConns: 255, maxLinks: 1 },
      confirmLink: { type: '0x21', linkNum: 1, maxConns: 255, maxLinks: 1 },
    };
    for (const name of [
      'bad-token',
      'cursor-past-rmbe',
      'consumer-past-producer',
      'malformed-llc',
      'malformed-confirm-response',
      'blocked-end',
      'blocked-end-exact',
    ])
      expect(rdma(name), `${name}\n${ctx}`).toMatchObject(v2);

    // 2a. Wrong alert token on a CDC carrying the abort flag: ignored and counted once as
    // cdc-bad-token; the connection still carries data and closes in order.
    const badToken = rdma('bad-token');
    expect(badToken, ctx).toMatchObject({
      before: 'ECHO TAG bad-token',
      after: 'ECHO PING after-bad-token',
      tcp: 'fin',
    });
    expect(badToken?.['badToken'], ctx).toBe(Number(badToken?.['badTokenBefore']) + 1);
    expect(badToken?.['badTokenBefore'], ctx).toBe(0);
    expect(String(badToken?.['serverFlags']).split(',').pop(), ctx).toBe('0xc0');

    // 2b. Producer cursor at the end of the server's RMBE: the server aborts the connection (CDC
    // abort flag 0x20 in byte 25, then its end of the TCP connection), counted once as
    // cdc-protocol and not as cdc-bad-token.
    const cursor = rdma('cursor-past-rmbe');
    expect(cursor, ctx).toMatchObject({
      before: 'ECHO TAG cursor-past-rmbe',
      abortSeen: true,
      protocolBefore: 0,
    });
    expect(cursor?.['protocol'], ctx).toBe(1);
    expect(cursor?.['badToken'], ctx).toBe(cursor?.['badTokenBefore']);
    expect(cursor?.['tcp'], ctx).toMatch(/^(fin|reset)$/);

    // 2b'. A consumer cursor past what the server produced (the native pump's consumer-side
    // check): the same abort, counted once as cdc-protocol.
    const consumer = rdma('consumer-past-producer');
    expect(consumer, ctx).toMatchObject({
      before: 'ECHO TAG consumer-past-producer',
      abortSeen: true,
      protocolBefore: 1,
      protocol: 2,
    });
    expect(consumer?.['tcp'], ctx).toMatch(/^(fin|reset)$/);

    // 2c. Malformed v2 LLC (unknown type 0x2A, length_v2 16, a truncated SEND) and a CDC with a
    // bad length: ignored, the connection still carries data and closes in order. The LLC
    // messages count as llc-malformed, the CDC the link dropped as cdc-malformed.
    const malformed = rdma('malformed-llc');
    expect(malformed, ctx).toMatchObject({
      before: 'ECHO TAG malformed-llc',
      after: 'ECHO PING after-malformed-llc',
      tcp: 'fin',
    });
    expect(String(malformed?.['serverFlags']).split(',').pop(), ctx).toBe('0xc0');
    expect(malformed?.['llcMalformed'], ctx).toBe(Number(malformed?.['llcBefore']) + 3);
    expect(malformed?.['badCdc'], ctx).toBe(Number(malformed?.['badCdcBefore']) + 1);

    // 2d. A malformed LLC message (type 0x21, length_v2 0) instead of the CONFIRM LINK response:
    // the server, committed to SMC-R, resets the connection instead of falling back.
    expect(rdma('malformed-confirm-response'), ctx).toMatchObject({ tcp: 'reset', extraBytes: 0 });

    // 2e. Done-writing while write-blocked, as the Linux kernel sends it when its close timed out
    // with data queued: the data written after it still reaches the application, which sees its
    // end of file only after the last write (the one without write-blocked); the connection then
    // closes in order. (Before, the first flag was the end: queued-2 and last were lost.)
    expect(rdma('blocked-end'), ctx).toMatchObject({
      before: 'ECHO TAG blocked-end',
      first: 'ECHO PING queued-1',
      second: 'ECHO PING queued-2',
      last: 'ECHO PING last',
      tcp: 'fin',
    });
    expect(String(rdma('blocked-end')?.['serverFlags']).split(',').pop(), ctx).toBe('0xc0');
    // 2f. The write-blocked end with nothing after it: the application still gets its end of
    // file (after the pump's grace), no hang.
    expect(rdma('blocked-end-exact'), ctx).toMatchObject({
      before: 'ECHO TAG blocked-end-exact',
      last: 'ECHO PING last',
      tcp: 'fin',
    });

    // 3. Isolation between link groups: each link group of the server has its own protection
    // domain, so the attacker's RDMA WRITE with the rkey and address of the victim's RMB (another
    // link group of the same pod) fails with a remote access error on the attacker's own link,
    // which the server then ends; the victim's connection carries on and closes in order.
    // (With one protection domain per sidecar, the write completed: `write` was IBV_WC_SUCCESS.)
    const iso = (name: string): Row | undefined =>
      results.find((x) => x['check'] === 'isolation' && x['case'] === name);
    const cross = iso('cross-link-group-write');
    expect(cross, ctx).toMatchObject({
      before: 'ECHO TAG cross-victim',
      attackerBefore: 'ECHO TAG cross-attacker',
      write: 'IBV_WC_REM_ACCESS_ERR',
      after: 'ECHO PING cross-victim-after',
      tcp: 'fin',
    });
    expect(cross?.['attackerTcp'], ctx).toMatch(/^(fin|reset)$/);
    expect(Number(cross?.['linkErrors']), ctx).toBeGreaterThan(Number(cross?.['linkErrorsBefore']));
    expect(srv).toContain('APP_EVENT cross-attacker error ECONNRESET');
    expect(String(cross?.['serverFlags']).split(',').pop(), ctx).toBe('0xc0');

    // 3b. A peer RMBE of 512 MiB in the Confirm: declined with MEM before anything is registered
    // (the server's registered bytes do not move), counted, and the connection falls back to TCP.
    const big = iso('peer-rmbe-too-large');
    expect(big, ctx).toMatchObject({
      decline: { code: hex(SMC_CLC_DECL.MEM), outOfSync: false, version: 2 },
      relay: 'ECHO TAG peer-rmbe-too-large',
      refused: 1,
    });
    const bigHeld = big?.['before'] as Record<string, number>;
    const bigAfter = big?.['after'] as Record<string, number>;
    expect(bigAfter['registered'], ctx).toBeLessThanOrEqual(Number(bigHeld['registered']));
    expect(Number(bigAfter['rss']) - Number(bigHeld['rss']), ctx).toBeLessThan(64 * MIB);

    // 3c. Floods on one link and first contacts abandoned after the Accept: every CONFIRM RKEY is
    // answered, all beyond the link group's 255 RMBs negatively; every TEST LINK is answered; the
    // link still carries data and closes in order; the server's registered memory and link groups
    // are back where they were, its resident memory within 32 MiB of it.
    const flood = iso('flood');
    expect(flood, ctx).toMatchObject({
      before: 'ECHO TAG flood',
      afterLlc: 'ECHO PING after-llc-flood',
      rkeyAnswers: 1000,
      testLinkAnswers: 500,
      accepts: 100,
      tcp: 'fin',
    });
    // The first contact's own RMB is one of the 255: 254 accepted, the rest refused.
    expect(flood?.['rkeyRefused'], ctx).toBe(1000 - 254);
    const held = flood?.['held'] as Record<string, number>;
    const after = flood?.['after'] as Record<string, number>;
    expect(held['registered'], ctx).toBeGreaterThan(0);
    expect(after['registered'], ctx).toBeLessThanOrEqual(Number(held['registered']));
    expect(after['linkGroups'], ctx).toBeLessThanOrEqual(Number(held['linkGroups']));
    expect(Number(after['rss']) - Number(held['rss']), ctx).toBeLessThan(32 * MIB);

    // The applications behind the server sidecar: the aborted connection saw a reset, the others
    // an orderly end.
    expect(srv).toContain('APP_EVENT cursor-past-rmbe error ECONNRESET');
    expect(srv).toContain('APP_EVENT consumer-past-producer error ECONNRESET');
    for (const name of [
      'bad-token',
      'malformed-llc',
      'blocked-end',
      'blocked-end-exact',
      'garbage',
      'bad-eyecatcher',
      'length-too-short',
      'unknown-version',
      'v1-only',
      'other-tenant-eid',
      'cross-victim',
      'peer-rmbe-too-large',
      'flood',
    ])
      expect(srv, name).toContain(`APP_EVENT ${name} end`);
    expect(srv).not.toMatch(/APP_EVENT (bad-token|malformed-llc|blocked-end|blocked-end-exact) error/);

    // The server sidecar survived all of it.
    expect(results.find((x) => x['check'] === 'server-ready')?.['status'], ctx).toBe(200);
    expect(lineValue(srv, 'SIDECAR_ALIVE'), ctx).toBe('yes');
    expect(lineValue(srv, 'HEALTH_READY'), ctx).toBe('200');
    // The cursors of 2b and 2b', only.
    expect(metric(srv, 'smc_rdma_errors_total{kind="cdc-protocol"}'), ctx).toBe(2);
    // The three malformed LLC messages of 2c and the 1,000 of an undefined type of 3c, dropped by
    // the link as the kernel does.
    expect(metric(srv, 'smc_rdma_errors_total{kind="llc-malformed"}'), ctx).toBe(3 + 1000);
    expect(metric(srv, 'smc_rdma_errors_total{kind="llc-rkey-refused"}'), ctx).toBe(1000 - 254);
    // CDCs the shared links dropped: the wrong token of 2a, the bad length of 2c.
    expect(metric(srv, 'smc_rdma_errors_total{kind="cdc-bad-token"}'), ctx).toBe(1);
    expect(metric(srv, 'smc_rdma_errors_total{kind="cdc-malformed"}'), ctx).toBe(1);
    const serverLog = readFileSync(join(server.outDir, 'sidecar.log'), 'utf8');
    expect(serverLog).not.toMatch(/uncaught|unhandled/i);

    // The legitimate transfer was in flight during the attack (half of it through RDMA, its curl
    // still running afterwards) and arrived intact; a new connection afterwards is upgraded too.
    expect(Number(lineValue(out, 'LEGIT_INFLIGHT_RDMA_TX')), ctx).toBeGreaterThanOrEqual(8 * MIB);
    expect(lineValue(out, 'LEGIT_RUNNING_AFTER_ATTACK'), ctx).toBe('yes');
    const [size, digest] = (lineValue(out, 'LEGIT_UPLOAD_EXPECT') ?? '').split(' ');
    expect(lineValue(out, 'LEGIT_UPLOAD_RC'), ctx).toMatch(/^0 ?$/);
    expect(lineValue(out, 'LEGIT_UPLOAD_GOT'), ctx).toBe(`${size} ${digest}`);
    expect(lineValue(srv, 'APP DOWNLOAD'), ctx).toBe(`${16 * MIB} ${lineValue(out, 'LEGIT_DOWNLOAD_GOT')}`);
    expect(metric(out, 'smc_connections_total{outcome="upgraded",reason="none"}'), ctx).toBe(2);
    expect(metric(out, 'smc_bytes_total{path="rdma",direction="tx"}'), ctx).toBeGreaterThanOrEqual(16 * MIB);
    expect(metric(out, 'smc_bytes_total{path="rdma",direction="rx"}'), ctx).toBeGreaterThanOrEqual(16 * MIB);
    expect(metric(srv, 'smc_bytes_total{path="rdma",direction="rx"}'), ctx).toBeGreaterThanOrEqual(16 * MIB);
    expect(metric(out, 'smc_bytes_total{path="tcp",direction="tx"}'), ctx).toBe(0);
    console.log(
      `hostile lab: ${r.wallSec.toFixed(0)} s; write-blocked end without more data ended after ${String(rdma('blocked-end-exact')?.['endAfterMs'])} ms; server errors ${JSON.stringify(results.find((x) => x['check'] === 'server-metrics')?.['lines'])}`,
    );
  });
});
