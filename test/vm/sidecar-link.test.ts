// The sidecar's SMC-R link layer on soft-RoCE, in the two-VM lab: two sidecars run the CLC
// handshake over TCP, create RC QPs on rxe0, bring them to RTS with each other's parameters and
// confirm the link over LLC; with the link-only data path they then decline (ERR_RDYLNK) and carry
// the HTTP requests over the same TCP connections; the native data path carries them over RDMA.
// VM-side program:
// test/vm/sidecar/link-node.ts, run compiled from dist/.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { ensureBuilt, REPO } from '../../sidecar/src/testing/build.js';
import { describeResult, labReady, runLab } from './lab.js';

const addon = join(REPO, 'native/build/Release/smc_verbs.node');
const program = 'dist/test/vm/sidecar/link-node.js';

type Row = Record<string, unknown> & { check?: string };

function rows(output: string): Row[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('RESULT '))
    .map((l) => JSON.parse(l.slice('RESULT '.length)) as Row);
}

const nodeCmd = (role: string, dataPath: string, idleMs = ''): string => `
export SMC_VERBS_ADDON=${addon}
cd "$LAB_REPO"
timeout 280 node ${program} ${role} ${dataPath} ${idleMs}
`;

function metric(lines: unknown, prefix: string): number {
  const line = (lines as string[]).find((l) => l.startsWith(prefix));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe.skipIf(!labReady() || !existsSync(addon))('sidecar SMC-R link layer on soft-RoCE (VM lab)', () => {
  beforeAll(async () => {
    await ensureBuilt([program, 'dist/sidecar/src/run.js'], ['sidecar/src', 'test/vm/sidecar', 'native']);
  }, 300_000);

  it('runs CLC, brings up and confirms a real link, then falls back to TCP without losing a byte', async () => {
    const r = await runLab({
      name: 'sidecar-link',
      timeoutSec: 300,
      scripts: [nodeCmd('server', 'link-only'), nodeCmd('client', 'link-only')],
    });
    const msg = describeResult(r);
    const [server, client] = r.nodes;
    expect(server.exitCode, `${msg}\n${server.output}`).toBe(0);
    expect(client.exitCode, `${msg}\n${client.output}`).toBe(0);
    const c = rows(client.output);
    expect(c.find((x) => x.check === 'started')?.['smcR']).toBe(true);
    expect(c.find((x) => x.check === 'http')?.['bodies']).toEqual([
      'app on 10.77.0.1: /req-0',
      'app on 10.77.0.1: /req-1',
      'app on 10.77.0.1: /req-2',
    ]);
    expect(c.find((x) => x.check === 'upload')?.['ok']).toBe(true);
    // The server declines once it holds the client's CONFIRM LINK response; the client waits for
    // that Decline (peer-declined) and declines itself (link-setup-failed) only if none comes.
    const connections = c.find((x) => x.check === 'metrics')?.['connections'] as string[];
    const fallback = (reason: string): number =>
      metric(connections, `smc_connections_total{outcome="fallback",reason="${reason}"}`);
    expect(fallback('link-setup-failed') + fallback('peer-declined'), connections.join('\n')).toBe(4);
    expect(
      connections.every((l) => /reason="(link-setup-failed|peer-declined)"/.test(l)),
      connections.join('\n'),
    ).toBe(true);
    // Both sides got as far as a confirmed link (QP at RTS, LLC CONFIRM LINK exchanged).
    for (const node of [server, client]) {
      expect(node.output.match(/SMC-R link confirmed/g)?.length, node.output).toBe(4);
    }
  });

  it('shares one link group between connections (native data path) and ends it when idle', async () => {
    const r = await runLab({
      name: 'sidecar-link-group',
      timeoutSec: 300,
      scripts: [nodeCmd('server', 'native', '4000'), nodeCmd('client', 'native', '4000')],
    });
    const msg = describeResult(r);
    const [server, client] = r.nodes;
    expect(server.exitCode, `${msg}\n${server.output}`).toBe(0);
    expect(client.exitCode, `${msg}\n${client.output}`).toBe(0);
    const c = rows(client.output);
    expect(c.find((x) => x.check === 'upload')?.['ok'], client.output).toBe(true);
    const m = c.find((x) => x.check === 'metrics');
    expect(m?.['connections']).toEqual(['smc_connections_total{outcome="upgraded",reason="none"} 4']);
    expect(metric(m?.['bytes'], 'smc_bytes_total{path="tcp",direction="tx"}')).toBe(0);
    // Four connections, one link: one CONFIRM LINK on each side, the other three joined it; the
    // second CONFIRM LINK is the new group after the idle end.
    for (const node of [server, client]) {
      // SMC-Rv2 between sidecars: the link's LLC messages use the v2 layouts.
      expect(node.output.match(/"smcVersion":2[^\n]*SMC-R link confirmed/g)?.length, node.output).toBe(2);
      expect(node.output.match(/connection joins the link group/g)?.length, node.output).toBe(3);
    }
    // The server's idle timer (4 s) ended the group and its DELETE LINK ended ours, 10 s before our
    // own timer would have; the next connection made a new group with a new first contact.
    expect(
      c.find((x) => x.check === 'link-groups'),
      client.output,
    ).toMatchObject({
      before: 1,
      afterIdle: 0,
      again: 'app on 10.77.0.1: /after-idle',
      afterAgain: 1,
    });
    const ended = (out: string, reason: string): boolean =>
      out.split('\n').some((l) => l.includes('link group ended') && l.includes(`"reason":"${reason}"`));
    expect(ended(server.output, 'idle'), server.output).toBe(true);
    expect(ended(client.output, 'peer deleted the link'), client.output).toBe(true);
    expect(client.output, client.output).toMatch(/peer deleted the link/);
  });
});
