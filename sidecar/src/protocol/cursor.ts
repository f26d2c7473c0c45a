/*
 * RMBE cursors (RFC 7609 "RMBE cursors"; kernel net/smc/smc_cdc.h
 * smc_curs_add, smc_curs_diff, smc_curs_comp). A cursor is a position in a
 * ring buffer of `size` bytes: `count` is the offset (0 <= count < size) and
 * `wrap` a 16-bit lap counter, so positions are unambiguous within 65536 laps.
 */

export interface Cursor {
  wrap: number;
  count: number;
}

export const CURSOR_WRAP_MODULUS = 0x10000;

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size <= 0 || size > 0xffffffff) {
    throw new RangeError(`RMBE size must be a positive 32-bit integer, got ${size}`);
  }
}

function checkCursor(size: number, c: Cursor, name: string): void {
  if (!Number.isInteger(c.wrap) || c.wrap < 0 || c.wrap >= CURSOR_WRAP_MODULUS) {
    throw new RangeError(`${name}.wrap must be a 16-bit unsigned integer, got ${c.wrap}`);
  }
  if (!Number.isInteger(c.count) || c.count < 0 || c.count >= size) {
    throw new RangeError(`${name}.count must be in [0, ${size}), got ${c.count}`);
  }
}

export function cursorIsValid(size: number, c: Cursor): boolean {
  try {
    checkSize(size);
    checkCursor(size, c, 'cursor');
    return true;
  } catch {
    return false;
  }
}

/** The cursor `position` bytes from the origin {0, 0}. */
export function cursorFromPosition(size: number, position: number): Cursor {
  checkSize(size);
  if (!Number.isSafeInteger(position) || position < 0) {
    throw new RangeError(`position must be a non-negative safe integer, got ${position}`);
  }
  return { wrap: Math.floor(position / size) % CURSOR_WRAP_MODULUS, count: position % size };
}

/** Advances by `bytes` (any non-negative amount), wrapping count and lap counter. */
export function cursorAdd(size: number, c: Cursor, bytes: number): Cursor {
  checkSize(size);
  checkCursor(size, c, 'cursor');
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new RangeError(`bytes must be a non-negative safe integer, got ${bytes}`);
  }
  const total = c.count + bytes;
  return {
    wrap: (c.wrap + Math.floor(total / size)) % CURSOR_WRAP_MODULUS,
    count: total % size,
  };
}

/**
 * Signed distance from `from` to `to`: positive when `to` is ahead. The lap
 * difference is read as a signed 16-bit value so 0xffff -> 0x0000 counts as one
 * lap forward. Agrees with smc_curs_comp whenever the cursors are at most one
 * lap apart, which is all a correct peer can produce.
 */
export function cursorCompare(size: number, from: Cursor, to: Cursor): number {
  checkSize(size);
  checkCursor(size, from, 'from');
  checkCursor(size, to, 'to');
  const laps = ((to.wrap - from.wrap + 0x18000) % CURSOR_WRAP_MODULUS) - 0x8000;
  return laps * size + to.count - from.count;
}

/** Bytes from `from` forward to `to`, never negative (smc_curs_diff). */
export function cursorDiff(size: number, from: Cursor, to: Cursor): number {
  return Math.max(0, cursorCompare(size, from, to));
}

export function cursorEquals(a: Cursor, b: Cursor): boolean {
  return a.wrap === b.wrap && a.count === b.count;
}

/**
 * Bytes the consumer may read: from its consumer cursor up to the producer
 * cursor. A value above `size` means the peer overran the buffer.
 */
export function bytesToRead(size: number, consumer: Cursor, producer: Cursor): number {
  return cursorDiff(size, consumer, producer);
}

/** Bytes readable before the read must wrap to offset 0. */
export function contiguousBytesToRead(size: number, consumer: Cursor, producer: Cursor): number {
  return Math.min(bytesToRead(size, consumer, producer), size - consumer.count);
}

/** Bytes the producer may still write without overtaking the peer's consumer cursor. */
export function producerFreeSpace(size: number, producer: Cursor, consumer: Cursor): number {
  return Math.max(0, size - cursorDiff(size, consumer, producer));
}

/** Free bytes writable before the write must wrap to offset 0. */
export function contiguousFreeSpace(size: number, producer: Cursor, consumer: Cursor): number {
  return Math.min(producerFreeSpace(size, producer, consumer), size - producer.count);
}
