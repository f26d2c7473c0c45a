import { describe, expect, it } from 'vitest';
import {
  bytesToRead,
  contiguousBytesToRead,
  contiguousFreeSpace,
  type Cursor,
  cursorAdd,
  cursorCompare,
  cursorDiff,
  cursorEquals,
  cursorFromPosition,
  cursorIsValid,
  producerFreeSpace,
} from './cursor.js';

// Semantics: RFC 7609 "RMBE cursors" (wrap sequence number + offset);
// reference behaviour: net/smc/smc_cdc.h smc_curs_add, smc_curs_diff, smc_curs_comp.

/** Kernel smc_curs_diff, ported literally, valid for cursors at most one lap apart. */
function kernelDiff(size: number, old: Cursor, next: Cursor): number {
  if (old.wrap !== next.wrap) return Math.max(0, size - old.count + next.count);
  return Math.max(0, next.count - old.count);
}

/** Kernel smc_curs_comp, ported literally. */
function kernelComp(size: number, old: Cursor, next: Cursor): number {
  if (old.wrap > next.wrap || (old.wrap === next.wrap && old.count > next.count)) {
    return -kernelDiff(size, next, old);
  }
  return kernelDiff(size, old, next);
}

const SIZES = [1, 2, 3, 5, 8];
const WRAP = 0x10000;

/** Absolute positions around the interesting laps: the start and the 16-bit wrap of the lap counter. */
function positions(size: number): number[] {
  const out: number[] = [];
  for (const lap of [0, 1, 2, WRAP - 2, WRAP - 1, WRAP, WRAP + 1]) {
    for (let c = 0; c < size; c++) out.push(lap * size + c);
  }
  return out;
}

describe('RMBE cursor arithmetic', () => {
  it('add matches absolute-position arithmetic, including the 0xffff -> 0 lap wrap', () => {
    for (const size of SIZES) {
      for (const p of positions(size)) {
        for (let n = 0; n <= 3 * size; n++) {
          expect(cursorAdd(size, cursorFromPosition(size, p), n)).toEqual(cursorFromPosition(size, p + n));
        }
      }
    }
  });

  it('compare is the signed distance for every pair of nearby cursors', () => {
    for (const size of SIZES) {
      const ps = positions(size);
      for (const a of ps) {
        for (const b of ps) {
          if (Math.abs(b - a) >= 0x8000 * size) continue; // ambiguous by design of a 16-bit lap counter
          const ca = cursorFromPosition(size, a);
          const cb = cursorFromPosition(size, b);
          expect(cursorCompare(size, ca, cb)).toBe(b - a);
          expect(cursorDiff(size, ca, cb)).toBe(Math.max(0, b - a));
        }
      }
    }
  });

  it('agrees with the kernel smc_curs_diff / smc_curs_comp for cursors within one lap', () => {
    for (const size of SIZES) {
      for (let wrap = 0; wrap < 3; wrap++) {
        for (let c1 = 0; c1 < size; c1++) {
          for (const dw of [0, 1]) {
            for (let c2 = 0; c2 < size; c2++) {
              const a = { wrap, count: c1 };
              const b = { wrap: wrap + dw, count: c2 };
              if (dw === 1 && c2 > c1) continue; // more than one lap apart
              expect(cursorDiff(size, a, b)).toBe(kernelDiff(size, a, b));
              expect(cursorCompare(size, a, b)).toBe(kernelComp(size, a, b));
              expect(cursorCompare(size, b, a)).toBe(kernelComp(size, b, a));
            }
          }
        }
      }
    }
  });

  it('bytes to read and producer free space partition the buffer', () => {
    for (const size of SIZES) {
      for (const cons of positions(size)) {
        for (let used = 0; used <= size; used++) {
          const consumer = cursorFromPosition(size, cons);
          const producer = cursorFromPosition(size, cons + used);
          expect(bytesToRead(size, consumer, producer)).toBe(used);
          expect(producerFreeSpace(size, producer, consumer)).toBe(size - used);
          const contiguousRead = contiguousBytesToRead(size, consumer, producer);
          expect(contiguousRead).toBe(Math.min(used, size - consumer.count));
          expect(contiguousFreeSpace(size, producer, consumer)).toBe(
            Math.min(size - used, size - producer.count),
          );
        }
      }
    }
  });

  it('handles the boundaries of a real 16 KiB RMBE', () => {
    const size = 16384;
    const last = { wrap: 0xffff, count: size - 1 };
    expect(cursorAdd(size, last, 1)).toEqual({ wrap: 0, count: 0 });
    expect(cursorDiff(size, last, { wrap: 0, count: 0 })).toBe(1);
    expect(cursorCompare(size, { wrap: 0, count: 0 }, last)).toBe(-1);
    expect(bytesToRead(size, { wrap: 7, count: 100 }, { wrap: 8, count: 100 })).toBe(size);
    expect(producerFreeSpace(size, { wrap: 8, count: 100 }, { wrap: 7, count: 100 })).toBe(0);
    // the peer overran us: more than a buffer's worth outstanding
    expect(bytesToRead(size, { wrap: 7, count: 100 }, { wrap: 8, count: 101 })).toBe(size + 1);
    expect(producerFreeSpace(size, { wrap: 8, count: 101 }, { wrap: 7, count: 100 })).toBe(0);
    expect(cursorEquals({ wrap: 1, count: 2 }, { wrap: 1, count: 2 })).toBe(true);
    expect(cursorEquals({ wrap: 1, count: 2 }, { wrap: 2, count: 2 })).toBe(false);
  });

  it('rejects invalid cursors and sizes', () => {
    expect(cursorIsValid(8, { wrap: 0, count: 7 })).toBe(true);
    expect(cursorIsValid(8, { wrap: 0, count: 8 })).toBe(false);
    expect(cursorIsValid(8, { wrap: 0x10000, count: 0 })).toBe(false);
    expect(cursorIsValid(0, { wrap: 0, count: 0 })).toBe(false);
    expect(() => cursorAdd(8, { wrap: 0, count: 8 }, 1)).toThrow(RangeError);
    expect(() => cursorAdd(8, { wrap: 0, count: 0 }, -1)).toThrow(RangeError);
    expect(() => cursorCompare(8, { wrap: -1, count: 0 }, { wrap: 0, count: 0 })).toThrow(RangeError);
    expect(() => cursorFromPosition(8, -1)).toThrow(RangeError);
  });
});
