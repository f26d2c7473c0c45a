import { ProtocolDecodeError, ProtocolEncodeError } from './errors.js';

/**
 * Bounds-checked big-endian reader. Every read names the field it reads so a
 * short buffer surfaces as a ProtocolDecodeError naming that field, never as a
 * RangeError from Buffer.
 */
export class ByteReader {
  readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.byteLength;
  }

  private need(offset: number, size: number, field: string): void {
    if (offset < 0 || offset + size > this.bytes.byteLength) {
      throw new ProtocolDecodeError(
        'truncated',
        field,
        `needs bytes ${offset}..${offset + size - 1}, message has ${this.bytes.byteLength}`,
      );
    }
  }

  u8(offset: number, field: string): number {
    this.need(offset, 1, field);
    return this.view.getUint8(offset);
  }

  u16(offset: number, field: string): number {
    this.need(offset, 2, field);
    return this.view.getUint16(offset, false);
  }

  u24(offset: number, field: string): number {
    this.need(offset, 3, field);
    return (this.view.getUint8(offset) << 16) | this.view.getUint16(offset + 1, false);
  }

  u32(offset: number, field: string): number {
    this.need(offset, 4, field);
    return this.view.getUint32(offset, false);
  }

  u64(offset: number, field: string): bigint {
    this.need(offset, 8, field);
    return this.view.getBigUint64(offset, false);
  }

  /** Copies, so decoded messages never alias the caller's receive buffer. */
  copy(offset: number, size: number, field: string): Buffer {
    this.need(offset, size, field);
    return Buffer.from(this.bytes.subarray(offset, offset + size));
  }

  equals(offset: number, expected: Uint8Array): boolean {
    if (offset < 0 || offset + expected.byteLength > this.bytes.byteLength) return false;
    for (let i = 0; i < expected.byteLength; i++) {
      if (this.bytes[offset + i] !== expected[i]) return false;
    }
    return true;
  }
}

function checkUint(field: string, value: number, bits: number): void {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
    throw new ProtocolEncodeError(field, `must be an unsigned ${bits}-bit integer, got ${value}`);
  }
}

/** Zero-filled fixed-size writer: reserved bytes stay zero unless written. */
export class ByteWriter {
  readonly bytes: Buffer;

  constructor(size: number) {
    this.bytes = Buffer.alloc(size);
  }

  u8(offset: number, value: number, field: string): void {
    checkUint(field, value, 8);
    this.bytes.writeUInt8(value, offset);
  }

  u16(offset: number, value: number, field: string): void {
    checkUint(field, value, 16);
    this.bytes.writeUInt16BE(value, offset);
  }

  u24(offset: number, value: number, field: string): void {
    checkUint(field, value, 24);
    this.bytes.writeUInt8(value >>> 16, offset);
    this.bytes.writeUInt16BE(value & 0xffff, offset + 1);
  }

  u32(offset: number, value: number, field: string): void {
    checkUint(field, value, 32);
    this.bytes.writeUInt32BE(value, offset);
  }

  u64(offset: number, value: bigint, field: string): void {
    if (typeof value !== 'bigint' || value < 0n || value > 0xffff_ffff_ffff_ffffn) {
      throw new ProtocolEncodeError(field, `must be an unsigned 64-bit bigint, got ${String(value)}`);
    }
    this.bytes.writeBigUInt64BE(value, offset);
  }

  /** Writes exactly `size` bytes; the model must carry exactly that many. */
  fixed(offset: number, value: Uint8Array, size: number, field: string): void {
    if (!(value instanceof Uint8Array) || value.byteLength !== size) {
      throw new ProtocolEncodeError(field, `must be ${size} bytes`);
    }
    this.bytes.set(value, offset);
  }
}

/** Validates a small unsigned field (a nibble, a 2-bit type) before packing it. */
export function checkBits(field: string, value: number, bits: number): number {
  checkUint(field, value, bits);
  return value;
}
