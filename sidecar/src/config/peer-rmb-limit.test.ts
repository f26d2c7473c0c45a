import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { loadConfig } from './load.js';
import { maxPeerRmbSize } from './schema.js';

function issuesOf(env: Record<string, string>): Map<string, string> {
  try {
    loadConfig({ env: { SMC_TENANT: 't', ...env } });
  } catch (err) {
    if (err instanceof ConfigError) return new Map(err.issues.map((i) => [i.path, i.message]));
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('limits.maxPeerRmbSize', () => {
  it('defaults to 1 MiB (the largest SmcPolicy rmbSize), or rmbSize when that is larger', () => {
    const cfg = loadConfig({ env: { SMC_TENANT: 't' } });
    expect(cfg.limits.maxPeerRmbSize).toBeNull();
    expect(maxPeerRmbSize(cfg.limits)).toBe(1024 * 1024);
    const big = loadConfig({ env: { SMC_TENANT: 't', SMC_RMB_SIZE: String(4 * 1024 * 1024) } });
    expect(maxPeerRmbSize(big.limits)).toBe(4 * 1024 * 1024);
  });

  it('is set by SMC_MAX_PEER_RMB_SIZE', () => {
    const cfg = loadConfig({ env: { SMC_TENANT: 't', SMC_MAX_PEER_RMB_SIZE: '262144' } });
    expect(maxPeerRmbSize(cfg.limits)).toBe(256 * 1024);
  });

  it('must be a power of two in the CLC range and at least rmbSize', () => {
    expect(issuesOf({ SMC_MAX_PEER_RMB_SIZE: '100000' }).get('limits.maxPeerRmbSize')).toMatch(
      /power of two/,
    );
    expect(issuesOf({ SMC_MAX_PEER_RMB_SIZE: String(1024 ** 3) }).has('limits.maxPeerRmbSize')).toBe(true);
    expect(
      issuesOf({ SMC_MAX_PEER_RMB_SIZE: '65536', SMC_RMB_SIZE: '131072' }).get('limits.maxPeerRmbSize'),
    ).toMatch(/at least limits.rmbSize/);
  });
});
