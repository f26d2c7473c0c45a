import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** The repository root. */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

function newestTs(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestTs(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Makes sure `npm run build:ts` output exists and is newer than the sources
 * under `sourceDirs` (repo-relative), for tests that run compiled files in
 * other processes, namespaces or VMs. Type errors elsewhere in the tree do
 * not stop tsc from emitting, so the outputs' presence decides.
 */
export async function ensureBuilt(outputs: readonly string[], sourceDirs: readonly string[]): Promise<void> {
  const src = Math.max(...sourceDirs.map((d) => newestTs(join(REPO, d))));
  const fresh = outputs.every((o) => existsSync(join(REPO, o)) && statSync(join(REPO, o)).mtimeMs >= src);
  if (fresh) return;
  await promisify(execFile)('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: REPO }).catch(() => undefined);
  for (const o of outputs) if (!existsSync(join(REPO, o))) throw new Error(`build did not produce ${o}`);
}
