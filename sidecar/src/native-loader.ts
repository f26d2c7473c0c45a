import type { NativeGetOriginalDst } from './intercept/original-dst.js';

/** The subset of native/index.ts the sidecar uses today. */
export interface NativeModule {
  getOriginalDst: NativeGetOriginalDst;
  listDevices(): { name: string }[];
}

function isNativeModule(m: unknown): m is NativeModule {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  return typeof r['getOriginalDst'] === 'function' && typeof r['listDevices'] === 'function';
}

export type NativeLoad = { ok: true; module: NativeModule } | { ok: false; error: Error };

/**
 * Loads the verbs addon's TypeScript API (native/index.ts, which throws at
 * import when the .node file is not built). Loaded lazily so that the sidecar
 * runs, relaying plain TCP, where the addon is absent.
 */
export async function loadNative(): Promise<NativeLoad> {
  const specifier = new URL('../../native/index.js', import.meta.url).href;
  try {
    const m: unknown = await import(specifier);
    if (!isNativeModule(m))
      return { ok: false, error: new Error('native module lacks the expected exports') };
    return { ok: true, module: m };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err : new Error(String(err)) };
  }
}
