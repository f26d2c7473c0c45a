// Transpiles TypeScript entry files (and the relative imports they pull in) to JavaScript under
// native/build/vm-js/, mirroring the repo layout, so that the VMs (which see the host's files
// read-only, with node but no TypeScript loader) can run them.
//
//   node test/vm/addon/transpile.mjs test/vm/addon/peer.ts bench/rdma-write/bench.ts
//   -> native/build/vm-js/test/vm/addon/peer.js, .../native/index.js, ...
//
// Prints the output root. The addon itself is found through SMC_VERBS_ADDON (set by the scripts).
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const outRoot = join(repo, 'native/build/vm-js');

const seen = new Set();
function emit(file) {
  const abs = resolve(file);
  if (seen.has(abs)) return;
  seen.add(abs);
  const src = readFileSync(abs, 'utf8');
  const out = ts.transpileModule(src, {
    fileName: abs,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: false,
      sourceMap: false,
    },
  });
  const dest = join(outRoot, relative(repo, abs)).replace(/\.ts$/, '.js');
  mkdirSync(dirname(dest), { recursive: true });
  writeFileSync(dest, out.outputText);
  // Follow relative imports: './x.js' -> './x.ts'
  for (const m of src.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)\.js['"]/g)) {
    const ts_ = resolve(dirname(abs), `${m[1]}.ts`);
    if (existsSync(ts_)) emit(ts_);
  }
}

const entries = process.argv.slice(2);
if (entries.length === 0) {
  console.error('usage: transpile.mjs ENTRY.ts...');
  process.exit(2);
}
for (const e of entries) emit(e);
// package.json so node treats the .js files as ES modules.
writeFileSync(join(outRoot, 'package.json'), '{ "type": "module" }\n');
console.log(outRoot);
