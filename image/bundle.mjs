// Bundles the compiled `smc` entry point (dist/bin/smc.js) and every module it reaches, its
// dependencies included, into OUTDIR: smc.js plus one lazily loaded chunk per role.
//
//   node image/bundle.mjs REPO OUTDIR
//
// Why: loading @kubernetes/client-node alone resolves, reads and compiles ~1000 ES modules; on a
// busy node that is most of a pod's start. One file per role starts several times faster and lets
// the image ship without node_modules.
//
// Every chunk lands in OUTDIR itself (no subdirectory): modules that locate files relative to
// import.meta.url (package.json two levels up, the addon under ../../native) see the same depth as
// dist/bin/smc.js had. The device plugin's api.proto is copied next to them.
import { copyFile, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';

const [repo, outdir] = process.argv.slice(2);
if (!repo || !outdir) {
  console.error('usage: node image/bundle.mjs REPO OUTDIR');
  process.exit(2);
}

const result = await build({
  entryPoints: { smc: join(repo, 'dist/bin/smc.js') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: '[name]-[hash]',
  minifySyntax: true,
  minifyWhitespace: true,
  // Error classes and log fields keep their names.
  keepNames: true,
  // CommonJS dependencies call require() for Node's built-ins; an ES module bundle has none.
  banner: {
    js: "import { createRequire as smcCreateRequire } from 'node:module'; const require = smcCreateRequire(import.meta.url);",
  },
  // The verbs addon is loaded from its installed path at run time.
  external: ['*.node'],
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});

const inputs = Object.keys(result.metafile.inputs);
const outputs = Object.entries(result.metafile.outputs);
await copyFile(join(repo, 'sidecar/src/node-agent/device-plugin/api.proto'), join(outdir, 'api.proto'));
const summary = {
  inputs: inputs.length,
  fromNodeModules: inputs.filter((i) => i.includes('node_modules/')).length,
  outputs: outputs.map(([file, o]) => ({ file: file.split('/').pop(), bytes: o.bytes })),
  // What the bundle still loads from outside itself (Node's built-ins, the addon).
  external: [
    ...new Set(outputs.flatMap(([, o]) => o.imports.filter((i) => i.external).map((i) => i.path))),
  ].sort(),
};
await writeFile(join(outdir, 'bundle.json'), `${JSON.stringify(summary)}\n`);
await writeFile(join(outdir, 'THIRD_PARTY_LICENSES'), await thirdPartyLicenses(repo, inputs));
const entry = join(outdir, 'smc.js');
// esbuild keeps the entry's #! line; make sure it is the first line.
const text = await readFile(entry, 'utf8');
if (!text.startsWith('#!')) await writeFile(entry, `#!/usr/bin/node\n${text}`);
console.log(
  `bundle: ${summary.inputs} modules (${summary.fromNodeModules} from node_modules) -> ${outputs.length} files, ` +
    `${Math.round(outputs.reduce((a, [, o]) => a + o.bytes, 0) / 1024)} KiB`,
);

/** The bundled packages' names, versions, licenses and license texts, sorted by package path. */
async function thirdPartyLicenses(root, files) {
  const dirs = new Set();
  for (const f of files) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(f);
    if (m) dirs.add(m[1]);
  }
  const parts = [];
  for (const dir of [...dirs].sort()) {
    const pkg = JSON.parse(await readFile(join(root, dir, 'package.json'), 'utf8'));
    const names = (await readdir(join(root, dir)))
      .filter((n) => /^(licen[cs]e|copying|notice)/i.test(n))
      .sort();
    const texts = await Promise.all(names.map((n) => readFile(join(root, dir, n), 'utf8')));
    parts.push(`${pkg.name}@${pkg.version} (${pkg.license ?? 'see text'})\n\n${texts.join('\n').trim()}\n`);
  }
  return parts.join(`\n${'-'.repeat(80)}\n\n`);
}
