// Host tests of the verbs addon: this machine has no RDMA device, so these cover loading, the
// empty device list, typed errors and argument validation. Data-path tests run in the VM lab
// (test/vm/addon.test.ts).
import { readFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';

import {
  CompletionChannel,
  CompletionQueue,
  Context,
  DataPump,
  MemoryRegion,
  MemoryWindow,
  ProtectionDomain,
  QueuePair,
  VerbsError,
  allocBuffer,
  debugCounters,
  getOriginalDst,
  listDevices,
  openDevice,
  randomPsn,
  releaseBuffer,
  trimMemory,
} from '../index.js';

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an exception');
}

function socketFd(s: Socket): number {
  const handle = (s as unknown as { _handle?: { fd?: number } })._handle;
  if (typeof handle?.fd !== 'number') throw new Error('no fd');
  return handle.fd;
}

describe('smc_verbs on a host without RDMA devices', () => {
  it('loads and lists no devices', () => {
    expect(listDevices()).toEqual([]);
  });

  it('fails to open a device with VerbsError ENODEV', () => {
    const e = caught(() => openDevice());
    expect(e).toBeInstanceOf(VerbsError);
    expect(e).toBeInstanceOf(Error);
    expect(e).toMatchObject({ code: 'ENODEV', syscall: 'ibv_open_device', errno: -19, name: 'VerbsError' });
    expect((e as Error).message).toMatch(/no RDMA device/);
    expect(caught(() => new Context('mlx5_0'))).toMatchObject({ code: 'ENODEV' });
  });

  it('reports all counters at zero', () => {
    const c = debugCounters();
    expect(c).toMatchObject({ contexts: 0, pds: 0, mrs: 0, mws: 0, channels: 0, cqs: 0, qps: 0, pumps: 0 });
  });

  it('rejects wrong argument types with TypeError ERR_INVALID_ARG_TYPE', () => {
    const fake = {} as unknown as Context;
    expect(caught(() => new Context(42 as unknown as string))).toMatchObject({
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
    });
    expect(caught(() => new ProtectionDomain(fake))).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(caught(() => new CompletionChannel(fake))).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(caught(() => new CompletionQueue(fake, {} as unknown as CompletionChannel))).toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
    });
    const pd = {} as unknown as ProtectionDomain;
    expect(caught(() => new QueuePair(pd, {} as CompletionQueue, {} as CompletionQueue))).toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
    });
    // Memory must be a buffer; access flags must be booleans.
    expect(caught(() => new MemoryRegion(pd, 'abc' as unknown as Buffer))).toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
    });
    expect(
      caught(() => new MemoryRegion(pd, Buffer.alloc(8), { remoteWrite: 'yes' as unknown as boolean })),
    ).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(caught(() => new MemoryRegion(pd, Buffer.alloc(0)))).toMatchObject({
      name: 'RangeError',
      code: 'ERR_OUT_OF_RANGE',
    });
    // With valid arguments the PD itself is checked.
    expect(caught(() => new MemoryRegion(pd, Buffer.alloc(8)))).toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
    });
  });

  it('refuses remote read without the explicit opt-in (EACCES)', () => {
    const pd = {} as unknown as ProtectionDomain;
    const e = caught(() => new MemoryRegion(pd, Buffer.alloc(64), { remoteRead: true }));
    expect(e).toBeInstanceOf(VerbsError);
    expect(e).toMatchObject({ code: 'EACCES', syscall: 'ibv_reg_mr' });
    expect((e as Error).message).toMatch(/allowRemoteRead/);
    // remote write without local write is invalid in verbs
    expect(
      caught(() => new MemoryRegion(pd, Buffer.alloc(64), { remoteWrite: true, localWrite: false })),
    ).toMatchObject({ code: 'EINVAL' });
    // with the opt-in, the next check is the PD
    expect(
      caught(() => new MemoryRegion(pd, Buffer.alloc(64), { remoteRead: true, allowRemoteRead: true })),
    ).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('validates memory window and mwBind arguments', () => {
    const pd = {} as unknown as ProtectionDomain;
    expect(caught(() => new MemoryWindow(pd))).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(
      caught(() => new MemoryRegion(pd, Buffer.alloc(64), { mwBind: 1 as unknown as boolean })),
    ).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', message: 'mwBind must be a boolean' });
    // a valid mwBind passes on to the PD check
    expect(caught(() => new MemoryRegion(pd, Buffer.alloc(64), { mwBind: true }))).toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
      message: 'expected a ProtectionDomain',
    });
    expect(debugCounters().mws).toBe(0);
  });

  it('allocates page-sized, zeroed buffers and counts them', () => {
    const before = debugCounters().buffers;
    const b = allocBuffer(10_000);
    expect(b).toBeInstanceOf(Buffer);
    expect(b.length).toBe(10_000);
    expect(b.every((x) => x === 0)).toBe(true);
    b.fill(7);
    expect(b[9_999]).toBe(7);
    expect(debugCounters().buffers).toBe(before + 1);
    expect(caught(() => allocBuffer(0))).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    expect(caught(() => allocBuffer('1' as unknown as number))).toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
    });
  });

  it("releases a buffer's pages at once, and only a whole allocBuffer buffer", () => {
    const rssKiB = (): number =>
      Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
    const size = 32 << 20;
    const b = allocBuffer(size);
    b.fill(0x5a);
    const touched = rssKiB();
    releaseBuffer(b);
    const released = rssKiB();
    // The 32 MiB were resident after the fill and are gone after the release (other allocations
    // of the test process in between are far smaller than the margin).
    expect(touched - released).toBeGreaterThan((size / 1024) * 0.9);
    expect(b.length).toBe(size);
    expect(b[0]).toBe(0);
    expect(b[size - 1]).toBe(0);
    b[1] = 3; // still mapped: writable again
    expect(b[1]).toBe(3);
    expect(caught(() => releaseBuffer(Buffer.alloc(4096)))).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(caught(() => releaseBuffer(b.subarray(4096)))).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(caught(() => releaseBuffer('x' as unknown as Buffer))).toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
    });
  });

  it('trimMemory collects what a burst left behind at once', () => {
    // Garbage as a burst of connections leaves it: many small objects, each with a Buffer,
    // unreachable once this function returns.
    const held = ((): NodeJS.MemoryUsage => {
      const burst = Array.from({ length: 20_000 }, (_, id) => ({ id, data: Buffer.alloc(1024, id & 0xff) }));
      expect(burst.length).toBe(20_000);
      return process.memoryUsage();
    })();
    trimMemory();
    const after = process.memoryUsage();
    // 20 MiB of Buffers and their objects are gone without waiting for V8 to get round to them.
    expect(held.external + held.arrayBuffers - (after.external + after.arrayBuffers)).toBeGreaterThan(
      2 * 15 * 2 ** 20,
    );
    expect(after.heapUsed).toBeLessThan(held.heapUsed);
  });

  it('validates DataPump arguments', () => {
    const qp = {} as unknown as QueuePair;
    const mr = {} as unknown as MemoryRegion;
    const opts = {
      fd: 0,
      stageMr: mr,
      rmbMr: mr,
      localToken: 1,
      peer: { addr: 0, rkey: 0, size: 1, token: 2 },
    };
    expect(caught(() => new DataPump(qp, opts))).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(debugCounters().pumps).toBe(0);
  });

  it('makes 24-bit PSNs', () => {
    for (let i = 0; i < 100; i++) {
      const p = randomPsn();
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(1 << 24);
    }
  });

  it('getOriginalDst: typed errors for a non-redirected socket and a bad fd', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const addr = server.address();
    if (!addr || typeof addr === 'string') throw new Error('no address');
    const accepted = once(server, 'connection');
    const client = connect(addr.port, '127.0.0.1');
    await once(client, 'connect');
    const [peer] = (await accepted) as [Socket];
    try {
      const e = caught(() => getOriginalDst(socketFd(peer)));
      expect(e).toBeInstanceOf(VerbsError);
      // No conntrack entry: ENOENT where netfilter is present, ENOPROTOOPT where it is not.
      expect(['ENOENT', 'ENOPROTOOPT']).toContain((e as VerbsError).code);
      expect(e).toMatchObject({ syscall: 'getsockopt' });
      expect(caught(() => getOriginalDst(1_000_000))).toMatchObject({
        code: 'EBADF',
        syscall: 'getsockname',
      });
      expect(caught(() => getOriginalDst(-1))).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    } finally {
      client.destroy();
      peer.destroy();
      server.close();
    }
  });
});
