import { ProtocolDecodeError } from '../errors.js';
import type { Prng } from './prng.js';

/** Derives a hostile input from a valid seed message. */
export function mutate(g: Prng, seed: Uint8Array): Buffer {
  const out = Buffer.from(seed);
  switch (g.int(0, 7)) {
    case 0: {
      // flip a few random bytes
      const n = g.int(1, 4);
      for (let i = 0; i < n && out.length > 0; i++) out[g.int(0, out.length - 1)] = g.u8();
      return out;
    }
    case 1:
      return out.subarray(0, g.int(0, out.length));
    case 2:
      return Buffer.concat([out, g.bytes(g.int(1, 64))]);
    case 3: {
      // poke the bytes where counts, lengths and offsets live in the formats we decode
      // v1: CLC length/flags, iparea and v2 extension offsets, counts; v2: LLC length_v2, REQ ADD LINK and
      // ADD LINK v2 counts, first-contact release, v2.1 limits and GID count of Accept/Confirm v2
      const hot = [1, 2, 4, 5, 6, 7, 24, 38, 39, 50, 51, 70, 71, 87, 88, 104, 105, 140, 141, 156].filter(
        (i) => i < out.length,
      );
      if (hot.length > 0) out[g.pick(hot)] = g.pick([0, 1, 2, 3, 8, 9, 17, 40, 44, 68, 0x7f, 0xff, g.u8()]);
      return out;
    }
    case 4:
      return g.bytes(g.int(0, 128));
    case 5:
      // random body behind the valid header
      return Buffer.concat([out.subarray(0, Math.min(8, out.length)), g.bytes(g.int(0, 120))]);
    case 6: {
      // set a 16/32-bit field to an extreme
      if (out.length >= 4) {
        const at = g.int(0, out.length - 2);
        out.writeUInt16BE(g.pick([0, 1, 0x7fff, 0xffff, g.u16()]), at);
      }
      return out;
    }
    default: {
      const n = g.int(1, 16);
      for (let i = 0; i < n && out.length > 0; i++) {
        const at = g.int(0, out.length - 1);
        out[at] = (out[at] ?? 0) ^ (1 << g.int(0, 7));
      }
      return out;
    }
  }
}

export interface FuzzResult {
  decoded: number;
  rejected: number;
  fields: Set<string>;
}

/**
 * Runs `decode` on `iterations` inputs; each must decode or throw
 * ProtocolDecodeError. Anything else is rethrown with the offending input.
 * `onDecoded` lets the caller check successful decodes (e.g. re-encode them).
 */
export function fuzzDecoder<T>(
  g: Prng,
  iterations: number,
  seeds: readonly Uint8Array[],
  decode: (bytes: Uint8Array) => T,
  onDecoded?: (value: T, input: Uint8Array) => void,
): FuzzResult {
  const result: FuzzResult = { decoded: 0, rejected: 0, fields: new Set() };
  // Stack traces dominate the cost of a throw; the input, not the stack, explains a fuzz failure.
  const savedLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    for (let i = 0; i < iterations; i++) {
      const input = mutate(g, g.pick(seeds));
      let value: T;
      try {
        value = decode(input);
      } catch (err) {
        if (err instanceof ProtocolDecodeError) {
          result.rejected++;
          result.fields.add(`${err.code}:${err.field}`);
          continue;
        }
        throw new Error(`decoder threw ${String(err)} on input ${input.toString('hex')}`, {
          cause: err,
        });
      }
      result.decoded++;
      onDecoded?.(value, input);
    }
  } finally {
    Error.stackTraceLimit = savedLimit;
  }
  return result;
}
