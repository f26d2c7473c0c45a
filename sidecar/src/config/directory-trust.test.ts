import { describe, expect, it } from 'vitest';
import { generateSigningKeyPem, signingKeyFromPem } from '../../../operator/src/api/directory-signature.js';
import { ConfigError } from './errors.js';
import { loadConfig } from './load.js';

const pub = signingKeyFromPem(generateSigningKeyPem()).publicKey;

describe('directory trust settings', () => {
  it('takes the public keys and the namespace from the environment the webhook sets', () => {
    const cfg = loadConfig({
      env: { SMC_TENANT: 'blue', SMC_DIRECTORY_PUBLIC_KEYS: pub, POD_NAMESPACE: 'shop' },
    });
    expect(cfg.directory.publicKeys).toEqual([pub]);
    expect(cfg.directory.namespace).toBe('shop');
  });

  it('defaults to no keys (an unchecked, hand-written directory)', () => {
    const cfg = loadConfig({ env: { SMC_TENANT: 'blue' } });
    expect(cfg.directory.publicKeys).toEqual([]);
    expect(cfg.directory.namespace).toBeNull();
  });

  it('refuses a malformed key, and keys without a namespace', () => {
    expect(() =>
      loadConfig({ env: { SMC_TENANT: 'blue', SMC_DIRECTORY_PUBLIC_KEYS: 'AAAA', POD_NAMESPACE: 'shop' } }),
    ).toThrow(ConfigError);
    expect(() => loadConfig({ env: { SMC_TENANT: 'blue', SMC_DIRECTORY_PUBLIC_KEYS: pub } })).toThrow(
      /namespace/,
    );
  });
});
