import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { loadConfig } from './load.js';
import { DEFAULT_MAX_REGISTERED_MEMORY, maxRegisteredMemory } from './schema.js';

const MiB = 1024 * 1024;

function issueOf(env: Record<string, string>): { message: string; source: string } | undefined {
  try {
    loadConfig({ env: { SMC_TENANT: 't', ...env } });
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.find((i) => i.path === 'limits.maxRegisteredMemory');
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('limits.maxRegisteredMemory', () => {
  it('defaults to 256 MiB: 4096 connections of 64 KiB, half the injected 512Mi memory limit', () => {
    const cfg = loadConfig({ env: { SMC_TENANT: 't' } });
    expect(cfg.limits.maxRegisteredMemory).toBeNull();
    expect(DEFAULT_MAX_REGISTERED_MEMORY).toBe(256 * MiB);
    expect(maxRegisteredMemory(cfg.limits)).toBe(cfg.limits.maxConnections * cfg.limits.rmbSize);
  });

  it('defaults to at least one rmbSize', () => {
    const big = loadConfig({ env: { SMC_TENANT: 't', SMC_RMB_SIZE: String(512 * MiB) } });
    expect(maxRegisteredMemory(big.limits)).toBe(512 * MiB);
  });

  it('is set in bytes by SMC_MAX_REGISTERED_MEMORY (what the webhook injects), `none` for the default', () => {
    const cfg = loadConfig({ env: { SMC_TENANT: 't', SMC_MAX_REGISTERED_MEMORY: String(64 * MiB) } });
    expect(maxRegisteredMemory(cfg.limits)).toBe(64 * MiB);
    const unset = loadConfig({ env: { SMC_TENANT: 't', SMC_MAX_REGISTERED_MEMORY: 'none' } });
    expect(unset.limits.maxRegisteredMemory).toBeNull();
  });

  it('takes a value below rmbSize (no SMC-R connection fits) rather than stopping the sidecar', () => {
    const cfg = loadConfig({ env: { SMC_TENANT: 't', SMC_MAX_REGISTERED_MEMORY: '0' } });
    expect(maxRegisteredMemory(cfg.limits)).toBe(0);
  });

  it('must be a whole, non-negative number of bytes', () => {
    for (const bad of ['-1', '1.5', '64Mi']) {
      expect(issueOf({ SMC_MAX_REGISTERED_MEMORY: bad }), bad).toMatchObject({
        source: 'env SMC_MAX_REGISTERED_MEMORY',
      });
    }
  });
});
