import { describe, expect, it } from 'vitest';
import type { Lease } from '../api/core.js';
import { leaseAvailable, microTime } from './lease.js';

const lease = (holder: string | null, durationSeconds = 15): Lease => ({
  metadata: { name: 'l', namespace: 'ns' },
  spec: { holderIdentity: holder, leaseDurationSeconds: durationSeconds },
});

describe('leaseAvailable', () => {
  it('is available when unheld or held by us', () => {
    expect(leaseAvailable(lease(null), 'me', 0, 0, 15_000)).toBe(true);
    expect(leaseAvailable(lease(''), 'me', 0, 0, 15_000)).toBe(true);
    expect(leaseAvailable(lease('me'), 'me', 0, 0, 15_000)).toBe(true);
  });
  it("waits the lease's duration from the local observation of its last change", () => {
    expect(leaseAvailable(lease('other', 15), 'me', 1000, 15_999, 10_000)).toBe(false);
    expect(leaseAvailable(lease('other', 15), 'me', 1000, 16_000, 10_000)).toBe(true);
  });
  it('falls back to the configured duration when the lease has none', () => {
    expect(leaseAvailable(lease('other', 0), 'me', 0, 9_999, 10_000)).toBe(false);
    expect(leaseAvailable(lease('other', 0), 'me', 0, 10_000, 10_000)).toBe(true);
  });
});

describe('microTime', () => {
  it('formats metav1.MicroTime', () => {
    expect(microTime(new Date('2026-01-02T03:04:05.678Z'))).toBe('2026-01-02T03:04:05.678000Z');
  });
});
