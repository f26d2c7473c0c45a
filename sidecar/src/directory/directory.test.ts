import { mkdtemp, rename, rm, symlink, writeFile, mkdir, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../log.js';
import { EndpointDirectory } from './endpoint-directory.js';
import { DirectoryError } from './errors.js';
import { parseDirectoryDocuments, readDirectory } from './read.js';
import { directoryDoc, endpoint } from './testing.js';
import { DirectoryWatcher } from './watcher.js';

describe('EndpointDirectory', () => {
  it('looks endpoints up by any spelling of their IP', () => {
    const dir = new EndpointDirectory([endpoint('10.1.0.5'), endpoint('fd00:0:0:0::5', { tenant: 'b' })]);
    expect(dir.lookup('10.1.0.5')?.pod).toBe('pod-10.1.0.5');
    expect(dir.lookup('::ffff:10.1.0.5')?.pod).toBe('pod-10.1.0.5');
    expect(dir.lookup('fd00::5')?.tenant).toBe('b');
    expect(dir.lookup('10.1.0.6')).toBeUndefined();
    expect(dir.lookup('not-an-ip')).toBeUndefined();
  });
});

describe('EndpointDirectory with dual-stack endpoints', () => {
  const dual = endpoint('10.1.0.5', { pod: 'web-0', podIPs: ['10.1.0.5', 'fd00:10:244:1::5'] });

  it('finds a pod by its IPv4 and by its IPv6 address, in any spelling', () => {
    const dir = new EndpointDirectory([dual, endpoint('10.1.0.6', { podIPs: ['10.1.0.6'] })]);
    for (const ip of ['10.1.0.5', '::ffff:10.1.0.5', 'fd00:10:244:1::5', 'FD00:10:244:1:0:0:0:5'])
      expect(dir.lookup(ip)?.pod, ip).toBe('web-0');
    expect(dir.lookup('fd00:10:244:1::6')).toBeUndefined();
    expect(dir.size).toBe(2); // endpoints, not addresses
  });

  it('reads an older shard (podIP alone), and always indexes podIP', () => {
    const older = endpoint('10.1.0.7');
    expect(new EndpointDirectory([older]).lookup('10.1.0.7')).toBe(older);
    const withoutPrimary = endpoint('10.1.0.8', { podIPs: ['fd00::8'] });
    const dir = new EndpointDirectory([withoutPrimary]);
    expect(dir.lookup('10.1.0.8')).toBe(withoutPrimary);
    expect(dir.lookup('fd00::8')).toBe(withoutPrimary);
  });

  it('gives an address two endpoints list to the later one, as with a repeated podIP', () => {
    const first = endpoint('10.1.0.1', { pod: 'first', podIPs: ['10.1.0.1', 'fd00::1'] });
    const second = endpoint('10.1.0.2', { pod: 'second', podIPs: ['10.1.0.2', 'fd00::1'] });
    const dir = new EndpointDirectory([first, second]);
    expect(dir.lookup('fd00::1')?.pod).toBe('second');
    expect(dir.lookup('10.1.0.1')?.pod).toBe('first');
    const samePodIp = new EndpointDirectory([
      endpoint('10.1.0.3', { pod: 'x' }),
      endpoint('10.1.0.3', { pod: 'y' }),
    ]);
    expect(samePodIp.lookup('10.1.0.3')?.pod).toBe('y');
    expect(samePodIp.size).toBe(1);
  });

  it('parses shards with podIPs and refuses a shard whose podIPs holds anything but IP literals', () => {
    const dir = parseDirectoryDocuments('/d', [JSON.stringify(directoryDoc([dual]))]);
    expect(dir.lookup('fd00:10:244:1::5')?.pod).toBe('web-0');
    expect(() =>
      parseDirectoryDocuments('/d', [
        JSON.stringify(directoryDoc([{ ...dual, podIPs: ['10.1.0.5', 'web-0.example'] }])),
      ]),
    ).toThrow(/does not match the directory schema/);
  });
});

describe('parseDirectoryDocuments', () => {
  it('merges shards', () => {
    const dir = parseDirectoryDocuments('/d', [
      JSON.stringify(directoryDoc([endpoint('10.0.0.1')], 0, 2)),
      JSON.stringify(directoryDoc([endpoint('10.0.0.2', { vlan: 7, pkey: '0x8001' })], 1, 2)),
    ]);
    expect(dir.size).toBe(2);
    expect(dir.lookup('10.0.0.2')).toMatchObject({ vlan: 7, pkey: '0x8001' });
  });

  it('rejects malformed JSON and schema violations', () => {
    expect(() => parseDirectoryDocuments('/d', ['{'])).toThrow(DirectoryError);
    expect(() =>
      parseDirectoryDocuments('/d', [JSON.stringify({ version: 2, shard: 0, shards: 1, endpoints: [] })]),
    ).toThrow(/does not match the directory schema/);
    expect(() =>
      parseDirectoryDocuments('/d', [
        JSON.stringify(directoryDoc([{ ...endpoint('10.0.0.1'), sidecarPort: 0 }])),
      ]),
    ).toThrow(DirectoryError);
  });
});

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('reading and watching', () => {
  let root: string;
  const watchers: DirectoryWatcher[] = [];
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'smc-dir-'));
  });
  afterEach(async () => {
    watchers.splice(0).forEach((w) => w.stop());
    await rm(root, { recursive: true, force: true });
  });

  const writeJson = (path: string, v: unknown) => writeFile(path, JSON.stringify(v));

  it('reads the shard files of a folder and ignores the rest', async () => {
    await writeJson(join(root, 'shard-0.json'), directoryDoc([endpoint('10.0.0.1')], 0, 2));
    await writeJson(join(root, 'shard-1.json'), directoryDoc([endpoint('10.0.0.2')], 1, 2));
    await writeFile(join(root, 'README'), 'not json');
    expect((await readDirectory(root)).size).toBe(2);
  });

  it('follows atomic renames of a single file, and keeps the last good version on garbage', async () => {
    const file = join(root, 'directory.json');
    await writeJson(file, directoryDoc([endpoint('10.0.0.1')]));
    const w = new DirectoryWatcher({
      path: file,
      pollIntervalMs: 60_000,
      log: silentLogger(),
      debounceMs: 10,
    });
    watchers.push(w);
    await w.start();
    expect(w.ready).toBe(true);
    expect(w.directory.lookup('10.0.0.1')).toBeDefined();

    await writeJson(`${file}.tmp`, directoryDoc([endpoint('10.0.0.1'), endpoint('10.0.0.2')]));
    await rename(`${file}.tmp`, file);
    await until(() => w.directory.size === 2);

    const errors: Error[] = [];
    w.on('error', (e) => errors.push(e));
    await writeFile(`${file}.tmp`, '{"version":');
    await rename(`${file}.tmp`, file);
    await until(() => errors.length > 0);
    expect(w.directory.size).toBe(2);
  });

  it('follows a projected-volume ..data symlink swap', async () => {
    const mount = join(root, 'mount');
    await mkdir(join(root, 'v1'));
    await mkdir(join(root, 'v2'));
    await mkdir(mount);
    await writeJson(join(root, 'v1', 'shard-0.json'), directoryDoc([endpoint('10.0.0.1')]));
    await writeJson(
      join(root, 'v2', 'shard-0.json'),
      directoryDoc([endpoint('10.0.0.1'), endpoint('10.0.0.3')]),
    );
    await symlink(join(root, 'v1'), join(mount, '..data'));
    await symlink(join('..data', 'shard-0.json'), join(mount, 'shard-0.json'));
    const w = new DirectoryWatcher({
      path: mount,
      pollIntervalMs: 60_000,
      log: silentLogger(),
      debounceMs: 10,
    });
    watchers.push(w);
    await w.start();
    expect(w.directory.size).toBe(1);
    await symlink(join(root, 'v2'), join(mount, '..data_tmp'));
    await rename(join(mount, '..data_tmp'), join(mount, '..data'));
    await until(() => w.directory.lookup('10.0.0.3') !== undefined);
  });

  it('notices changes by polling when no fs event arrives, and starts before the file exists', async () => {
    const file = join(root, 'late.json');
    const w = new DirectoryWatcher({ path: file, pollIntervalMs: 100, log: silentLogger() });
    watchers.push(w);
    await w.start();
    expect(w.ready).toBe(false);
    expect(w.directory.size).toBe(0);
    // Stop the fs watcher to prove the poller alone is enough.
    (w as unknown as { fsWatcher: { close(): void } | null }).fsWatcher?.close();
    await writeJson(file, directoryDoc([endpoint('10.0.0.9')]));
    await until(() => w.directory.size === 1);
    await unlink(file);
  });
});
