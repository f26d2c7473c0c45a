import type { NativeGetOriginalDst } from './intercept/original-dst.js';

/** The verbs addon's TypeScript API (native/index.ts); imported for its type only. */
export type VerbsModule = typeof import('../../native/index.js');

function hasFunctions(m: unknown, names: readonly string[]): boolean {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  return names.every((n) => typeof r[n] === 'function');
}

export type NativeLoad =
  { ok: true; module: VerbsModule; getOriginalDst: NativeGetOriginalDst } | { ok: false; error: Error };

/**
 * Loads native/index.ts at run time (it throws at import when the .node file
 * is not built), so that the sidecar still runs, relaying plain TCP, without it.
 */
export async function loadNative(): Promise<NativeLoad> {
  try {
    const m: unknown = await import('../../native/index.js');
    if (!hasFunctions(m, ['getOriginalDst', 'openDevice', 'allocBuffer', 'randomPsn'])) {
      return { ok: false, error: new Error('native module lacks the expected exports') };
    }
    const module = m as VerbsModule;
    return { ok: true, module, getOriginalDst: (fd) => module.getOriginalDst(fd) };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err : new Error(String(err)) };
  }
}
