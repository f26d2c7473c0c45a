// A burst of concurrent new connections between two pods through both sidecars (bench/burst in
// the two-VM soft-RoCE lab, nginx as the server, every connection opened at once), and the same
// burst over direct TCP between pods without sidecars as the reference. No connection may be reset,
// truncated or lost through the sidecars, and every one of them is counted upgraded or fallback.
// Times are reported, not asserted (bench/burst prints them against the goals).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

import { ensureBuilt, REPO } from '../../sidecar/src/testing/build.js';
import { labReady } from './lab.js';

const run = promisify(execFile);
const addon = join(REPO, 'native/build/Release/smc_verbs.node');
/** Beyond one link group's 255 connections, and four handshake windows of 64. */
const N = 300;
/** limits.rmbPoolSize RMBs, each with its staging ring, at the default rmbSize. */
const POOL_BYTES = 16 * 2 * 64 * 1024;

interface Burst {
  n: number;
  ok: number;
  reset: number;
  error: number;
  truncated: number;
  badAnswer: number;
  timeout: number;
}
interface Result {
  n: number;
  direct: Burst;
  smcr: Burst;
  counted: { client: { ok: boolean; upgraded: number; fallback: number; declined: number } };
  /** Per sidecar: registered bytes at base, before the burst, after it, settled (bench/burst). */
  memory: Record<'client' | 'web', { reg: number[] }>;
  goals: { resets: boolean; counted: boolean };
}

/** bench/burst/run.sh with N connections: its whole output (the lab dir is kept in `keep`). */
async function runBurst(keep: string): Promise<string> {
  try {
    const r = await run('bash', ['bench/burst/run.sh', '--keep', keep], {
      cwd: REPO,
      env: { ...process.env, BURST_N: String(N), BURST_SAMPLE_MS: '0' },
      maxBuffer: 64 * 2 ** 20,
      timeout: 1_200_000,
    });
    return `${r.stdout}\n${r.stderr}`;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`bench/burst failed:\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, { cause: err });
  }
}

describe.skipIf(!labReady() || !existsSync(addon))(
  'a burst of new connections through the sidecars (VM lab)',
  () => {
    beforeAll(async () => {
      await ensureBuilt(['dist/sidecar/src/main.js'], ['sidecar/src', 'native', 'operator/src']);
    }, 300_000);

    it(`${N} concurrent connections: none reset or truncated, each counted upgraded or fallback`, async () => {
      const keep = mkdtempSync(join(tmpdir(), 'smc-burst-test-'));
      const out = await runBurst(keep);
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      expect(line, out).toBeDefined();
      const result = JSON.parse(line?.slice('RESULT '.length) ?? '{}') as Result;
      console.log(
        out
          .split('\n')
          .filter((l) => l.startsWith('|') || /goal/.test(l))
          .join('\n'),
      );
      // The reference: the lab carries N concurrent connections over plain TCP.
      expect(result.direct, out).toMatchObject({ n: N, ok: N, reset: 0 });
      // Through both sidecars: every connection answered in full, none reset, truncated or lost.
      expect(result.smcr, out).toMatchObject({
        n: N,
        ok: N,
        reset: 0,
        error: 0,
        truncated: 0,
        badAnswer: 0,
        timeout: 0,
      });
      expect(result.goals.resets, out).toBe(true);
      // The client sidecar counted each one, upgraded or fallback, none declined (reset).
      expect(result.counted.client.ok, out).toBe(true);
      expect(result.counted.client.declined, out).toBe(0);
      expect(result.counted.client.upgraded + result.counted.client.fallback, out).toBe(N);
      expect(result.goals.counted, out).toBe(true);
      // Registered memory comes back: settled within the RMB pool (16 RMBs with their staging rings
      // of 64 KiB each) above where it was before the burst.
      for (const side of ['client', 'web'] as const) {
        const [, before, , settled] = result.memory[side].reg;
        expect(settled, `${side}\n${out}`).toBeLessThanOrEqual(Number(before) + POOL_BYTES);
      }
      rmSync(keep, { recursive: true, force: true });
    });
  },
);
