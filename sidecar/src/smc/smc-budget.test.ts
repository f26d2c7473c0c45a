import { describe, expect, it } from 'vitest';
import { refusalReason, type SmcAdmission, SmcBudget } from './smc-budget.js';

const KiB = 1024;

function admitted(a: SmcAdmission): () => void {
  if (!a.admitted) throw new Error(`refused: ${a.refusal.limit}`);
  return a.release;
}

describe('SmcBudget', () => {
  it('admits up to maxConnections, then refuses with the numbers', () => {
    const budget = new SmcBudget({ maxConnections: 2, maxRegisteredMemory: 1024 * KiB, rmbSize: 64 * KiB });
    admitted(budget.reserve());
    admitted(budget.reserve());
    expect(budget.reserve()).toEqual({
      admitted: false,
      refusal: {
        limit: 'maxConnections',
        connections: 2,
        reservedBytes: 128 * KiB,
        maxConnections: 2,
        maxRegisteredMemory: 1024 * KiB,
        rmbSize: 64 * KiB,
      },
    });
    expect(budget.connections).toBe(2);
  });

  it('admits only while one more RMB fits in maxRegisteredMemory', () => {
    // 160 KiB holds two 64 KiB RMBs, not a third, although the connection limit would allow it.
    const budget = new SmcBudget({ maxConnections: 10, maxRegisteredMemory: 160 * KiB, rmbSize: 64 * KiB });
    admitted(budget.reserve());
    admitted(budget.reserve());
    const third = budget.reserve();
    expect(third).toMatchObject({
      admitted: false,
      refusal: { limit: 'maxRegisteredMemory', connections: 2 },
    });
    expect(budget.reservedBytes).toBe(128 * KiB);
    // Exactly full is within the budget.
    const exact = new SmcBudget({ maxConnections: 10, maxRegisteredMemory: 128 * KiB, rmbSize: 64 * KiB });
    admitted(exact.reserve());
    admitted(exact.reserve());
    expect(exact.reserve().admitted).toBe(false);
  });

  it('admits nothing when one RMB does not fit', () => {
    const budget = new SmcBudget({ maxConnections: 10, maxRegisteredMemory: 16 * KiB, rmbSize: 64 * KiB });
    expect(budget.reserve()).toMatchObject({ admitted: false, refusal: { limit: 'maxRegisteredMemory' } });
    expect(budget.connections).toBe(0);
  });

  it('release gives back one slot and one RMB, once however often it is called', () => {
    const budget = new SmcBudget({ maxConnections: 2, maxRegisteredMemory: 1024 * KiB, rmbSize: 64 * KiB });
    const first = admitted(budget.reserve());
    const second = admitted(budget.reserve());
    first();
    first();
    first();
    expect(budget.connections).toBe(1);
    expect(budget.reservedBytes).toBe(64 * KiB);
    // A repeated release must not free the other connection's reservation.
    const third = admitted(budget.reserve());
    expect(budget.reserve().admitted).toBe(false);
    second();
    third();
    third();
    expect(budget.connections).toBe(0);
    expect(budget.reservedBytes).toBe(0);
  });

  it('a reservation released on a failed attempt is available again', async () => {
    const budget = new SmcBudget({ maxConnections: 1, maxRegisteredMemory: 64 * KiB, rmbSize: 64 * KiB });
    const attempt = async (): Promise<void> => {
      const release = admitted(budget.reserve());
      try {
        await Promise.reject(new Error('link setup failed'));
      } finally {
        release();
      }
    };
    await expect(attempt()).rejects.toThrow('link setup failed');
    expect(budget.connections).toBe(0);
    expect(budget.reservedBytes).toBe(0);
    await expect(attempt()).rejects.toThrow('link setup failed');
    admitted(budget.reserve());
  });

  it('refuses limits that are not counts of bytes and connections', () => {
    expect(() => new SmcBudget({ maxConnections: -1, maxRegisteredMemory: 0, rmbSize: 1 })).toThrow(
      RangeError,
    );
    expect(() => new SmcBudget({ maxConnections: 1, maxRegisteredMemory: 1.5, rmbSize: 1 })).toThrow(
      RangeError,
    );
    expect(() => new SmcBudget({ maxConnections: 1, maxRegisteredMemory: 1, rmbSize: 0 })).toThrow(
      RangeError,
    );
  });

  it('bounds handshakes in flight: over maxHandshakes an upgrade is refused at once (handshake-overload); a finished handshake frees its slot, the connection keeps its reservation', () => {
    const budget = new SmcBudget({
      maxConnections: 10,
      maxRegisteredMemory: 1024 * KiB,
      rmbSize: 64 * KiB,
      maxHandshakes: 2,
    });
    const a = budget.reserve();
    const b = budget.reserve();
    const c = budget.reserve();
    expect(c.admitted).toBe(false);
    if (c.admitted || !a.admitted || !b.admitted) throw new Error('unexpected admissions');
    expect(c.refusal).toMatchObject({ limit: 'maxConcurrentHandshakes', handshakes: 2, maxHandshakes: 2 });
    expect(refusalReason(c.refusal)).toBe('handshake-overload');
    a.handshakeDone();
    a.handshakeDone();
    expect(budget.handshakes).toBe(1);
    expect(budget.connections).toBe(2);
    const d = budget.reserve();
    expect(d.admitted).toBe(true);
    // Releasing a connection still in its handshake frees both; releasing again frees nothing.
    b.release();
    b.release();
    expect(budget.handshakes).toBe(1);
    expect(budget.connections).toBe(2);
    a.release();
    if (d.admitted) d.release();
    expect(budget.handshakes).toBe(0);
    expect(budget.connections).toBe(0);
    expect(budget.reservedBytes).toBe(0);
  });

  it('a refusal by the SmcPolicy limits is limit-reached', () => {
    const budget = new SmcBudget({ maxConnections: 1, maxRegisteredMemory: 1024 * KiB, rmbSize: 64 * KiB });
    admitted(budget.reserve());
    const r = budget.reserve();
    if (r.admitted) throw new Error('admitted');
    expect(refusalReason(r.refusal)).toBe('limit-reached');
  });
});
