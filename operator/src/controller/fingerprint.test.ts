import { describe, expect, it } from 'vitest';
import { pod } from '../testing/fixtures.js';
import { podFingerprint } from './fingerprint.js';

describe('podFingerprint', () => {
  it('changes when a pod gains its second address family (the directory lists every pod IP)', () => {
    const v4 = pod('a', {}, { ip: '10.0.0.1', ips: ['10.0.0.1'], ready: true });
    const dual = pod('a', {}, { ip: '10.0.0.1', ips: ['10.0.0.1', 'fd00::1'], ready: true });
    expect(podFingerprint(dual)).not.toBe(podFingerprint(v4));
    expect(podFingerprint(dual)).toBe(
      podFingerprint(pod('a', {}, { ip: '10.0.0.1', ips: ['10.0.0.1', 'fd00::1'], ready: true })),
    );
  });
});
