import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// image/build.sh's reproducibility rests on two pieces: the layer writer (image/lib.sh) and the
// layout writer (image/oci.mjs). Both are run here on a tiny tree.
const IMAGE = new URL('../../image/', import.meta.url).pathname;
const EPOCH = 1_700_000_000;
const work = mkdtempSync(join(tmpdir(), 'smc-image-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** A small tree; `variant` changes only what the layer must not depend on (mtimes, creation order). */
function tree(name: string, variant: number, content = 'hello\n'): string {
  const root = join(work, name);
  const files = ['etc/passwd', 'opt/app/main.js', 'opt/app/lib/util.js'];
  for (const f of variant === 0 ? files : [...files].reverse()) {
    mkdirSync(join(root, f, '..'), { recursive: true });
    writeFileSync(join(root, f), `${f}: ${content}`);
  }
  chmodSync(join(root, 'opt/app/main.js'), 0o755);
  mkdirSync(join(root, 'tmp'));
  chmodSync(join(root, 'tmp'), 0o1777);
  mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
  symlinkSync('/opt/app/main.js', join(root, 'usr/local/bin/app'));
  linkSync(join(root, 'etc/passwd'), join(root, 'etc/passwd-'));
  const when = 1_600_000_000 + variant * 12_345;
  for (const f of [...files, 'tmp', 'opt/app', 'etc']) utimesSync(join(root, f), when, when);
  return root;
}

function writeLayer(dir: string, out: string): string {
  execFileSync(
    'bash',
    ['-c', `umask 022; source "${IMAGE}lib.sh"; write_layer "$1" "$2"`, 'test', dir, out],
    {
      env: { ...process.env, LC_ALL: 'C', SOURCE_DATE_EPOCH: String(EPOCH) },
    },
  );
  return sha256(out);
}

describe('image layer writer', () => {
  it('gives the same bytes for the same tree, whatever its mtimes and creation order', () => {
    const a = writeLayer(tree('a', 0), join(work, 'a.tar.gz'));
    const b = writeLayer(tree('b', 1), join(work, 'b.tar.gz'));
    const c = writeLayer(tree('c', 0, 'changed\n'), join(work, 'c.tar.gz'));
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });

  it('writes root-owned entries at SOURCE_DATE_EPOCH, sorted, and a gzip header without name or time', () => {
    const gz = readFileSync(join(work, 'a.tar.gz'));
    expect(gz.readUInt32LE(4)).toBe(0); // MTIME
    expect(gz.readUInt8(3) & 0x08).toBe(0); // FNAME
    const listing = execFileSync(
      'tar',
      ['--list', '--verbose', '--numeric-owner', '--full-time', '-zf', join(work, 'a.tar.gz')],
      {
        env: { ...process.env, TZ: 'UTC' },
      },
    )
      .toString()
      .trim()
      .split('\n');
    const names = listing.map((l) => l.split(/\s+/)[5]);
    expect(names).toEqual([...names].sort());
    expect(names).toContain('tmp/');
    for (const line of listing) {
      expect(line).toMatch(/^\S+ 0\/0 +\d+ 2023-11-14 22:13:20 /);
      expect(line).not.toMatch(/PaxHeaders/);
    }
    expect(listing.find((l) => l.includes(' tmp/'))).toMatch(/^drwxrwxrwt /);
    // Hard links are stored as files, so the bytes do not depend on links outside the tree.
    expect(listing.find((l) => l.includes(' etc/passwd-'))).toMatch(/^-rw-r--r-- /);
  });
});

describe('OCI layout writer', () => {
  it('names each image for containerd and docker, with digests that match the blobs', () => {
    const spec = join(work, 'spec.json');
    writeFileSync(
      spec,
      JSON.stringify({
        created: '2023-11-14T22:13:20Z',
        images: [
          {
            name: 'smc.dev/lab/test:1',
            config: { Cmd: ['/opt/app/main.js'], User: '65532:65532', Labels: { b: '2', a: '1' } },
            layers: [{ file: 'a.tar.gz', comment: 'tiny tree' }],
          },
        ],
      }),
    );
    const layout = (dir: string): string =>
      execFileSync('node', [`${IMAGE}oci.mjs`, 'layout', join(work, dir), spec]).toString();
    const printed = layout('oci1');
    expect(layout('oci2')).toBe(printed);
    const [name, digest] = printed.trim().split(' ');
    expect(name).toBe('smc.dev/lab/test:1');

    const dir = join(work, 'oci1');
    const blob = (d: string): string => join(dir, 'blobs', 'sha256', d.replace(/^sha256:/, ''));
    const json = (file: string): Record<string, unknown> => JSON.parse(readFileSync(file, 'utf8'));
    expect(json(join(dir, 'oci-layout'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = json(join(dir, 'index.json')) as {
      manifests: { digest: string; size: number; annotations: Record<string, string> }[];
    };
    expect(index.manifests).toHaveLength(1);
    const [desc] = index.manifests;
    if (desc === undefined) throw new Error('no manifest in index.json');
    expect(desc.digest).toBe(digest);
    expect(desc.annotations).toEqual({
      'io.containerd.image.name': 'smc.dev/lab/test:1',
      'org.opencontainers.image.ref.name': 'smc.dev/lab/test:1',
    });
    const manifest = json(blob(desc.digest)) as {
      config: { digest: string };
      layers: { digest: string; size: number }[];
    };
    for (const d of [desc.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
      expect(`sha256:${sha256(blob(d))}`).toBe(d);
    }
    const layerDigest = manifest.layers[0]?.digest ?? '';
    expect(layerDigest).toBe(`sha256:${sha256(join(work, 'a.tar.gz'))}`);
    const configText = readFileSync(blob(manifest.config.digest), 'utf8');
    expect(configText.indexOf('"Labels":{"a":"1","b":"2"}')).toBeGreaterThan(0);
    const config = JSON.parse(configText) as { rootfs: { diff_ids: string[] } };
    const tar = execFileSync('gzip', ['-dc', join(work, 'a.tar.gz')]);
    expect(config.rootfs.diff_ids).toEqual([`sha256:${createHash('sha256').update(tar).digest('hex')}`]);
    expect(json(join(dir, 'manifest.json'))).toEqual([
      {
        Config: `blobs/sha256/${manifest.config.digest.slice(7)}`,
        RepoTags: ['smc.dev/lab/test:1'],
        Layers: [`blobs/sha256/${layerDigest.slice(7)}`],
      },
    ]);
  });

  it('refuses an image name without a tag', () => {
    const spec = join(work, 'untagged.json');
    writeFileSync(
      spec,
      JSON.stringify({
        created: '2023-11-14T22:13:20Z',
        images: [{ name: 'reg:5000/x', config: {}, layers: [] }],
      }),
    );
    expect(() =>
      execFileSync('node', [`${IMAGE}oci.mjs`, 'layout', join(work, 'oci3'), spec], { stdio: 'pipe' }),
    ).toThrow(/without a tag/);
  });
});
