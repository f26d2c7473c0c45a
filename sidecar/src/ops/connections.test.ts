import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from '../cli.js';
import { FallbackReason } from '../policy/reasons.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { formatAge, formatBytes, formatConnectionsTable, TABLE_COLUMNS } from './connections-format.js';
import { ConnectionRegistry, type ConnectionsReport, DEFAULT_CLOSED_KEPT } from './connections.js';

function clock(start = Date.UTC(2025, 0, 1)): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('ConnectionRegistry', () => {
  it('registers a connection at accept time with canonical addresses, pending until decided', () => {
    const c = clock();
    const reg = new ConnectionRegistry({ now: c.now });
    const conn = reg.open('a1b2c3d4e5f6', 'outbound', 'outbound');
    conn.setLocal('::ffff:10.0.0.7', 40000);
    conn.setPeer('2001:0db8:0000:0000:0000:0000:0000:0001', 8080);
    c.advance(1500);
    expect(reg.size).toBe(1);
    const [info] = reg.report().connections;
    expect(info).toMatchObject({
      id: 'a1b2c3d4e5f6',
      direction: 'outbound',
      listener: 'outbound',
      local: '10.0.0.7:40000',
      peer: '[2001:db8::1]:8080',
      mode: 'pending',
      outcome: null,
      reason: null,
      decline: null,
      link: null,
      bytes: { rdma: { tx: 0, rx: 0 }, tcp: { tx: 0, rx: 0 } },
      startedAt: '2025-01-01T00:00:00.000Z',
      ageMs: 1500,
      closed: false,
      closedAt: null,
    });
  });

  it('counts every connection it registered, closed or not', () => {
    const reg = new ConnectionRegistry();
    const a = reg.open('a', 'outbound', 'outbound');
    reg.open('b', 'inbound', 'inbound');
    reg.close(a);
    reg.close(a);
    expect(reg.openedTotal).toBe(2);
    expect(reg.size).toBe(1);
  });

  it('leaves an address it cannot parse as it is, and unknown ends null', () => {
    const reg = new ConnectionRegistry();
    const conn = reg.open('x', 'inbound', 'inbound');
    conn.setPeer('not-an-ip', 1);
    conn.setLocal(undefined, 80);
    expect(conn.peer).toBe('not-an-ip:1');
    expect(conn.local).toBeNull();
  });

  it('goes handshake → SMCR on an upgrade, and counts RDMA bytes apart from TCP bytes', () => {
    const reg = new ConnectionRegistry();
    const conn = reg.open('c1', 'outbound', 'outbound');
    conn.handshake();
    expect(conn.mode).toBe('handshake');
    conn.upgraded({ linkId: 'lg1', id: '2a' });
    const sunk: [string, number][] = [];
    const rdma = conn.counter('rdma', (d, n) => sunk.push([d, n]));
    rdma('tx', 1000);
    rdma('tx', 24);
    rdma('rx', 7);
    const [info] = reg.report().connections;
    expect(info).toMatchObject({
      mode: 'SMCR',
      outcome: 'upgraded',
      reason: 'none',
      link: { id: 'lg1', smcConn: '2a' },
      bytes: { rdma: { tx: 1024, rx: 7 }, tcp: { tx: 0, rx: 0 } },
    });
    // The metrics' counter still sees every chunk.
    expect(sunk).toEqual([
      ['tx', 1000],
      ['tx', 24],
      ['rx', 7],
    ]);
  });

  it('goes handshake → TCP on a fallback, with the Decline code, its name and who sent it', () => {
    const reg = new ConnectionRegistry();
    const conn = reg.open('c2', 'inbound', 'smc');
    conn.handshake();
    conn.fallback(FallbackReason.LinkSetupFailed, { code: SMC_CLC_DECL.ERR_RDYLNK, origin: 'local' });
    const tcp = conn.counter('tcp', () => undefined);
    tcp('rx', 5);
    tcp('tx', 3);
    expect(reg.report().connections[0]).toMatchObject({
      mode: 'TCP',
      outcome: 'fallback',
      reason: 'link-setup-failed',
      decline: { code: 0x09990002, hex: '0x09990002', name: 'ERR_RDYLNK', origin: 'local' },
      bytes: { rdma: { tx: 0, rx: 0 }, tcp: { tx: 3, rx: 5 } },
      link: null,
    });
  });

  it('records declines (reset connections) with mode none', () => {
    const reg = new ConnectionRegistry();
    const conn = reg.open('c3', 'outbound', 'outbound');
    conn.declined(FallbackReason.PeerDeclined, { code: 0x03030008, origin: 'peer' });
    expect(reg.report().connections[0]).toMatchObject({
      mode: 'none',
      outcome: 'declined',
      reason: 'peer-declined',
      decline: { hex: '0x03030008', name: 'NOUEID', origin: 'peer' },
    });
    const other = reg.open('c4', 'inbound', 'inbound');
    other.declined(null, null, 'local application refused');
    expect(reg.report().connections[1]).toMatchObject({ reason: null, detail: 'local application refused' });
  });

  it('moves a closed connection into the ring, flagged closed, with its duration as age', () => {
    const c = clock();
    const reg = new ConnectionRegistry({ now: c.now });
    const a = reg.open('a', 'outbound', 'outbound');
    c.advance(10);
    const b = reg.open('b', 'inbound', 'inbound');
    c.advance(250);
    reg.close(a);
    reg.close(a); // idempotent
    c.advance(5000);
    const r = reg.report();
    expect(r).toMatchObject({ live: 1, closed: 1, closedCapacity: DEFAULT_CLOSED_KEPT });
    expect(r.connections.map((x) => [x.id, x.closed, x.ageMs])).toEqual([
      ['b', false, 5250],
      ['a', true, 260],
    ]);
    expect(r.connections[1]?.closedAt).toBe('2025-01-01T00:00:00.260Z');
    expect(reg.liveConnections()).toEqual([b]);
  });

  it('keeps only the last N closed connections, most recent first', () => {
    const reg = new ConnectionRegistry({ closedCapacity: 3 });
    for (let i = 0; i < 10; i++) reg.close(reg.open(`c${i}`, 'outbound', 'outbound'));
    expect(reg.closedConnections().map((c) => c.id)).toEqual(['c9', 'c8', 'c7']);
    expect(reg.report()).toMatchObject({ live: 0, closed: 3, closedCapacity: 3 });
    const none = new ConnectionRegistry({ closedCapacity: 0 });
    none.close(none.open('x', 'outbound', 'outbound'));
    expect(none.report().connections).toEqual([]);
    expect(() => new ConnectionRegistry({ closedCapacity: -1 })).toThrow(RangeError);
  });

  it('lists live connections oldest first, and holds many without a per-connection timer', () => {
    const reg = new ConnectionRegistry({ closedCapacity: 2 });
    const conns = Array.from({ length: 1000 }, (_, i) => reg.open(`c${i}`, 'outbound', 'outbound'));
    expect(reg.size).toBe(1000);
    for (const c of conns.slice(0, 998)) reg.close(c);
    expect(reg.report().connections.map((c) => c.id)).toEqual(['c998', 'c999', 'c997', 'c996']);
  });
});

describe('smc connections table', () => {
  it('formats byte counts and ages compactly', () => {
    expect([0, 1023, 1024, 1536, 100_000, 10 * 1024 * 1024, 5 * 1024 ** 4].map(formatBytes)).toEqual([
      '0',
      '1023',
      '1.0K',
      '1.5K',
      '97K',
      '10M',
      '5.0T',
    ]);
    expect([0, 850, 4200, 42_000, 75_000, 7_500_000, 2 * 86_400_000 + 3_600_000].map(formatAge)).toEqual([
      '0ms',
      '850ms',
      '4.2s',
      '42s',
      '1m15s',
      '2h05m',
      '2d01h',
    ]);
  });

  it('prints one aligned row per connection and a summary', () => {
    const c = clock();
    const reg = new ConnectionRegistry({ now: c.now, closedCapacity: 8 });
    const up = reg.open('0a0b0c0d0e0f', 'outbound', 'outbound');
    up.setLocal('10.0.0.7', 40000);
    up.setPeer('10.0.1.9', 6379);
    up.upgraded({ linkId: 'lg1', id: '2a' });
    const rdma = up.counter('rdma', () => undefined);
    rdma('tx', 3 * 1024 * 1024);
    rdma('rx', 2048);
    const fb = reg.open('111111111111', 'inbound', 'smc');
    fb.setLocal('10.0.0.7', 8080);
    fb.setPeer('fd00::9', 51000);
    fb.fallback(FallbackReason.PeerDeclined, { code: 0x03030008, origin: 'peer' });
    fb.counter('tcp', () => undefined)('tx', 512);
    const plain = reg.open('222222222222', 'inbound', 'smc');
    plain.fallback(null, null, 'peer sidecar asked for TCP');
    const hs = reg.open('333333333333', 'outbound', 'outbound');
    hs.handshake();
    c.advance(65_000);
    reg.close(plain);

    const text = formatConnectionsTable(reg.report());
    const lines = text.trimEnd().split('\n');
    expect(lines[0]?.split(/\s{2,}/)).toEqual([...TABLE_COLUMNS]);
    expect(lines.slice(1, -1).map((l) => l.split(/\s{2,}/))).toEqual([
      [
        '0a0b0c0d0e0f',
        'out',
        '10.0.0.7:40000',
        '10.0.1.9:6379',
        'SMCR',
        'upgraded',
        '3.0M/2.0K',
        '0/0',
        'lg1',
        '1m05s',
        'open',
      ],
      [
        '111111111111',
        'in/smc',
        '10.0.0.7:8080',
        '[fd00::9]:51000',
        'TCP',
        'fallback/peer-declined 0x03030008',
        '0/0',
        '512/0',
        '-',
        '1m05s',
        'open',
      ],
      ['333333333333', 'out', '-', '-', 'handshake', '-', '0/0', '0/0', '-', '1m05s', 'open'],
      [
        '222222222222',
        'in/smc',
        '-',
        '-',
        'TCP',
        "fallback (peer's choice)",
        '0/0',
        '0/0',
        '-',
        '1m05s',
        'closed',
      ],
    ]);
    // Columns line up: every row has its MODE column where the header has it.
    const modeAt = lines[0]?.indexOf('MODE');
    for (const l of lines.slice(1, -1))
      expect(l.slice(modeAt).split(' ')[0]).toMatch(/^(SMCR|TCP|handshake)$/);
    expect(lines.at(-1)).toBe('3 open, 1 recently closed (the last 8 are kept)');
    expect(text.endsWith('\n')).toBe(true);
    for (const l of lines) expect(l).toBe(l.trimEnd());
  });

  it('says so when there is nothing to show', () => {
    const empty: ConnectionsReport = {
      generatedAt: '',
      live: 0,
      closed: 0,
      closedCapacity: 64,
      connections: [],
    };
    expect(formatConnectionsTable(empty)).toBe(
      'no connections\n0 open, 0 recently closed (the last 64 are kept)\n',
    );
  });
});

describe('smc connections arguments', () => {
  it('parses the output format and the admin port in the usual spellings', () => {
    expect(parseArgs(['connections'])).toEqual({
      kind: 'connections',
      output: 'table',
      adminPort: undefined,
    });
    for (const args of [['-o', 'json'], ['-ojson'], ['-o=json'], ['--output', 'json'], ['--output=json']]) {
      expect(parseArgs(['connections', ...args])).toMatchObject({ output: 'json' });
    }
    expect(parseArgs(['connections', '--admin-port', '16000', '-o', 'table'])).toEqual({
      kind: 'connections',
      output: 'table',
      adminPort: 16000,
    });
    expect(parseArgs(['connections', '--admin-port=1'])).toMatchObject({ adminPort: 1 });
    expect(parseArgs(['connections', '--help'])).toEqual({ kind: 'help', topic: 'connections' });
  });

  it('rejects mistakes', () => {
    expect(() => parseArgs(['connections', '-o', 'yaml'])).toThrow(/table.*json/);
    expect(() => parseArgs(['connections', '-o'])).toThrow(/needs a value/);
    expect(() => parseArgs(['connections', '--admin-port', '70000'])).toThrow(/port number/);
    expect(() => parseArgs(['connections', '--admin-port', 'x'])).toThrow(UsageError);
    expect(() => parseArgs(['connections', 'pod-a'])).toThrow(/unexpected argument "pod-a"/);
    expect(() => parseArgs(['connections', '--bogus'])).toThrow(/unknown flag --bogus/);
  });
});
