/**
 * Seeded PRNG (mulberry32) for reproducible property and fuzz tests: a failing
 * case is replayed by its seed, with no dependency beyond the test runner.
 */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor((this.nextU32() / 0x1_0000_0000) * (max - min + 1));
  }

  bool(pTrue = 0.5): boolean {
    return this.nextU32() / 0x1_0000_0000 < pTrue;
  }

  u8(): number {
    return this.nextU32() & 0xff;
  }

  u16(): number {
    return this.nextU32() & 0xffff;
  }

  u24(): number {
    return this.nextU32() & 0xffffff;
  }

  u64(): bigint {
    return (BigInt(this.nextU32()) << 32n) | BigInt(this.nextU32());
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.u8();
    return out;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(0, items.length - 1)];
    if (item === undefined) throw new RangeError('pick from an empty list');
    return item;
  }
}
