// The JSON half of image/build.sh (layers are written there with GNU tar and gzip -n):
//
//   node image/oci.mjs layout DIR SPEC.json   OCI image layout in DIR (oci-layout, index.json, blobs/,
//                                             plus a docker-style manifest.json); prints one line per
//                                             image: name, manifest digest, compressed and tar bytes
//   node image/oci.mjs check-imports DIR      fails when a .js file under DIR imports a relative path
//                                             that is not there (what the image leaves out of dist/)
//
// SPEC: { "created": RFC 3339, "images": [ { "name": "repo:tag", "config": { Entrypoint, Cmd, Env,
// User, WorkingDir, Labels }, "layers": [ { "file": "x.tar.gz", "comment": "..." } ] } ] }.
// Every JSON document is written with sorted keys and no whitespace, so equal inputs give equal digests.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { copyFile, link, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createGunzip } from 'node:zlib';

const MT_INDEX = 'application/vnd.oci.image.index.v1+json';
const MT_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MT_CONFIG = 'application/vnd.oci.image.config.v1+json';
const MT_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** JSON with object keys sorted at every level (arrays keep their order). */
export function canonicalJson(value) {
  const sort = (v) => {
    if (Array.isArray(v)) return v.map(sort);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sort(v[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sort(value));
}

/** Refuses an image name without a tag ("reg:5000/x"): ctr and kind need one. */
export function requireTag(name) {
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon <= slash || colon === name.length - 1) throw new Error(`image name without a tag: ${name}`);
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

async function hashStream(stream) {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    h.update(chunk);
    size += chunk.length;
  }
  return { hex: h.digest('hex'), size };
}

/** Digest and size of a .tar.gz as stored, and of the tar inside it (the config's diff_id). */
async function describeLayer(file) {
  const [stored, tar] = await Promise.all([
    hashStream(createReadStream(file)),
    hashStream(createReadStream(file).pipe(createGunzip())),
  ]);
  return { stored, tar };
}

async function putBlob(dir, hex, data) {
  const path = join(dir, 'blobs', 'sha256', hex);
  if (existsSync(path)) return;
  if (typeof data === 'string') {
    // Layers: a hard link when the work dir shares the file system, a copy otherwise.
    await link(data, path).catch(() => copyFile(data, path));
  } else {
    await writeFile(path, data);
  }
}

async function layout(dir, specFile) {
  const spec = JSON.parse(await readFile(specFile, 'utf8'));
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const platform = { architecture: 'amd64', os: 'linux' };
  const described = new Map();
  const index = [];
  const dockerManifests = [];
  for (const image of spec.images) {
    requireTag(image.name);
    const layers = [];
    for (const layer of image.layers) {
      const file = resolve(dirname(specFile), layer.file);
      if (!described.has(file)) described.set(file, await describeLayer(file));
      const d = described.get(file);
      await putBlob(dir, d.stored.hex, file);
      layers.push({ ...d, comment: layer.comment });
    }
    const config = Buffer.from(
      canonicalJson({
        ...platform,
        created: spec.created,
        config: image.config,
        rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${l.tar.hex}`) },
        history: layers.map((l) => ({ created: spec.created, created_by: l.comment })),
      }),
    );
    const configHex = sha256(config);
    await putBlob(dir, configHex, config);
    const manifest = Buffer.from(
      canonicalJson({
        schemaVersion: 2,
        mediaType: MT_MANIFEST,
        config: { mediaType: MT_CONFIG, digest: `sha256:${configHex}`, size: config.length },
        layers: layers.map((l) => ({
          mediaType: MT_LAYER,
          digest: `sha256:${l.stored.hex}`,
          size: l.stored.size,
        })),
      }),
    );
    const manifestHex = sha256(manifest);
    await putBlob(dir, manifestHex, manifest);
    index.push({
      mediaType: MT_MANIFEST,
      digest: `sha256:${manifestHex}`,
      size: manifest.length,
      platform,
      // ref.name is the full name, not only the tag: an archive holds several images tagged "1", and
      // skopeo (oci-archive:FILE:NAME) and podman select or name images by it; containerd reads
      // io.containerd.image.name.
      annotations: {
        'io.containerd.image.name': image.name,
        'org.opencontainers.image.ref.name': image.name,
      },
    });
    dockerManifests.push({
      Config: `blobs/sha256/${configHex}`,
      RepoTags: [image.name],
      Layers: layers.map((l) => `blobs/sha256/${l.stored.hex}`),
    });
    const stored = layers.reduce((n, l) => n + l.stored.size, 0);
    const tarBytes = layers.reduce((n, l) => n + l.tar.size, 0);
    console.log(`${image.name} sha256:${manifestHex} ${stored} ${tarBytes}`);
  }
  await writeFile(join(dir, 'oci-layout'), canonicalJson({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    canonicalJson({ schemaVersion: 2, mediaType: MT_INDEX, manifests: index }),
  );
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(dockerManifests));
}

async function* jsFiles(dir) {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* jsFiles(p);
    else if (e.name.endsWith('.js')) yield p;
  }
}

async function checkImports(dir) {
  const spec = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s*)['"](\.{1,2}\/[^'"]+)['"]/gm;
  const missing = [];
  for await (const file of jsFiles(dir)) {
    for (const m of (await readFile(file, 'utf8')).matchAll(spec)) {
      const target = resolve(dirname(file), m[1]);
      if (!existsSync(target) || !statSync(target).isFile()) missing.push(`${file}: ${m[1]}`);
    }
  }
  if (missing.length > 0) throw new Error(`imports of files left out:\n${missing.join('\n')}`);
}

// Run as a program only, so tests can import the helpers above.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [cmd, ...args] = process.argv.slice(2);
  if (cmd === 'layout' && args.length === 2) {
    await layout(args[0], args[1]);
  } else if (cmd === 'check-imports' && args.length === 1) {
    await checkImports(args[0]);
  } else {
    console.error('usage: oci.mjs layout DIR SPEC.json | oci.mjs check-imports DIR');
    process.exit(2);
  }
}
