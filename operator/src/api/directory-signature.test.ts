import { describe, expect, it } from 'vitest';
import { renderShard } from '../directory/build.js';
import { DirectorySchema } from './directory.js';
import {
  generateSigningKeyPem,
  keyIdOf,
  publicKeyFromBase64,
  signDocument,
  signatureProblem,
  signingKeyFromPem,
  verificationKeys,
} from './directory-signature.js';

const key = signingKeyFromPem(generateSigningKeyPem());
const other = signingKeyFromPem(generateSigningKeyPem());
const trusted = verificationKeys([key.publicKey]);

function signedShard(): string {
  const { doc } = renderShard(
    0,
    1,
    [
      {
        podIP: '10.0.0.1',
        node: 'n',
        namespace: 'shop',
        pod: 'web-0',
        tenant: 'blue',
        sidecarPort: 15100,
        allowedPeerTenants: [],
      },
    ],
    'shop',
  );
  return signDocument({ ...doc, issuedAt: 1_700_000_000_000 }, key);
}

describe('directory signatures', () => {
  it('keys: 32 raw bytes in base64, a 16-hex-digit id', () => {
    expect(Buffer.from(key.publicKey, 'base64')).toHaveLength(32);
    expect(key.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(key.keyId).toBe(keyIdOf(key.publicKey));
    expect(key.keyId).not.toBe(other.keyId);
    expect(() => publicKeyFromBase64('AAAA')).toThrow(/32 bytes/);
    expect(() => signingKeyFromPem('not a key')).toThrow();
  });

  it('a signed shard is a valid directory document that verifies', () => {
    const text = signedShard();
    const doc: unknown = JSON.parse(text);
    expect(signatureProblem(doc, trusted)).toBeNull();
    const parsed = DirectorySchema.parse(doc);
    expect(parsed).toMatchObject({ namespace: 'shop', issuedAt: 1_700_000_000_000, keyId: key.keyId });
    expect(Object.keys(doc as object).slice(-2)).toEqual(['keyId', 'signature']);
  });

  it('covers every address of a dual-stack endpoint', () => {
    const { doc } = renderShard(
      0,
      1,
      [
        {
          podIP: '10.0.0.1',
          podIPs: ['10.0.0.1', 'fd00::1'],
          node: 'n',
          namespace: 'shop',
          pod: 'web-0',
          tenant: 'blue',
          sidecarPort: 15100,
          allowedPeerTenants: [],
        },
      ],
      'shop',
    );
    const text = signDocument({ ...doc, issuedAt: 1 }, key);
    expect(signatureProblem(JSON.parse(text), trusted)).toBeNull();
    expect(DirectorySchema.parse(JSON.parse(text)).endpoints[0]?.podIPs).toEqual(['10.0.0.1', 'fd00::1']);
    // Another pod's IPv6 address slipped into the list (to draw its connections here) is caught.
    for (const podIPs of [['10.0.0.1', 'fd00::66'], ['10.0.0.1'], ['fd00::1', '10.0.0.1']]) {
      const forged = JSON.parse(text) as { endpoints: Record<string, unknown>[] };
      forged.endpoints[0] = { ...forged.endpoints[0], podIPs };
      expect(signatureProblem(forged, trusted)).toBe('bad-signature');
    }
  });

  it('any change to the content breaks the signature', () => {
    const doc = JSON.parse(signedShard()) as Record<string, unknown> & {
      endpoints: { tenant: string; podIP: string }[];
    };
    const tamper = (f: (d: typeof doc) => void): unknown => {
      const copy = JSON.parse(JSON.stringify(doc)) as typeof doc;
      f(copy);
      return copy;
    };
    const first = (d: typeof doc) => d.endpoints[0] ?? { tenant: '', podIP: '' };
    expect(
      signatureProblem(
        tamper((d) => (first(d).tenant = 'red')),
        trusted,
      ),
    ).toBe('bad-signature');
    expect(
      signatureProblem(
        tamper((d) => (first(d).podIP = '10.9.9.9')),
        trusted,
      ),
    ).toBe('bad-signature');
    expect(
      signatureProblem(
        tamper((d) => (d['namespace'] = 'intruder')),
        trusted,
      ),
    ).toBe('bad-signature');
    expect(
      signatureProblem(
        tamper((d) => (d['issuedAt'] = 1_800_000_000_000)),
        trusted,
      ),
    ).toBe('bad-signature');
    expect(
      signatureProblem(
        tamper((d) => d.endpoints.push({ ...first(d), podIP: '10.0.0.2' })),
        trusted,
      ),
    ).toBe('bad-signature');
    // The same fields in another order are other bytes.
    const { version, ...rest } = doc;
    expect(signatureProblem({ ...rest, version }, trusted)).toBe('bad-signature');
    expect(
      signatureProblem(
        tamper((d) => (d['signature'] = 'AAAA')),
        trusted,
      ),
    ).toBe('bad-signature');
  });

  it('unsigned documents and unknown keys are told apart', () => {
    const doc = JSON.parse(signedShard()) as Record<string, unknown>;
    const { signature: _s, keyId: _k, ...unsigned } = doc;
    expect(signatureProblem(unsigned, trusted)).toBe('unsigned');
    expect(signatureProblem('x', trusted)).toBe('unsigned');
    expect(signatureProblem(doc, verificationKeys([other.publicKey]))).toBe('unknown-key');
    // Re-signed by someone else's key, claiming ours: the id names our key, the signature is not ours.
    const forged = JSON.parse(signDocument(unsigned, other)) as Record<string, unknown>;
    expect(signatureProblem({ ...forged, keyId: key.keyId }, trusted)).toBe('bad-signature');
  });
});
