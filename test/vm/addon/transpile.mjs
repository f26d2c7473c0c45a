// Transpiles TypeScript entry files (and the relative imports they pull in) to JavaScript under
// node_modules/.cache/smc-vm-lab/, mirroring the repo layout, so that the VMs (which see the host's files
// read-only, with node but no TypeScript loader) can run them. Also copies the built addon to
// node_modules/.cache/smc-vm-lab/smc_verbs.node: a concurrent `npm run build:native` (which wipes native/build)
// then cannot pull it from under a running lab.
//
//   node test/vm/addon/transpile.mjs test/vm/addon/peer.ts bench/rdma-write/bench.ts
//   -> node_modules/.cache/smc-vm-lab/test/vm/addon/peer.js, .../native/index.js, ..., smc_verbs.node
//
// Prints the output root. Scripts point SMC_VERBS_ADDON at the copy.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const outRoot = join(repo, 'node_modules/.cache/smc-vm-lab');

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
const addon = join(repo, 'native/build/Release/smc_verbs.node');
if (existsSync(addon)) {
  const tmp = join(outRoot, `.smc_verbs.node.${process.pid}`);
  copyFileSync(addon, tmp);
  renameSync(tmp, join(outRoot, 'smc_verbs.node'));
}
// package.json so node treats the .js files as ES modules.
writeFileSync(join(outRoot, 'package.json'), '{ "type": "module" }\n');
console.log(outRoot);
