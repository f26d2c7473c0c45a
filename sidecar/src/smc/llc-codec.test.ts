import { describe, expect, it } from 'vitest';
import type { LlcConfirmRkey } from '../protocol/llc/confirm-rkey.js';
import { asLlcVersion, decodeLlc, encodeLlc } from './llc-codec.js';

const rkey: LlcConfirmRkey = {
  kind: 'confirm-rkey',
  response: false,
  negative: false,
  retry: false,
  numRkeys: 0,
  own: { rmbKey: 0x1234, rmbVaddr: 0x7f00_dead_b000n },
  others: [],
};

describe('LLC of either version on a link', () => {
  it('writes v1 and v2 layouts and reads each back by the version nibble of the type byte', () => {
    const v1 = encodeLlc(rkey);
    const v2 = encodeLlc(asLlcVersion(rkey, 2));
    expect(v1.byteLength).toBe(44);
    expect(v2.byteLength).toBe(44);
    expect(v1[0]).toBe(0x06); // CONFIRM RKEY
    expect(v2[0]).toBe(0x26); // CONFIRM RKEY v2
    // length_v2 is the sender's host order, little-endian on x86-64 (smc_llc_init_msg_hdr)
    expect([v2[1], v2[2]]).toEqual([44, 0]);
    expect(decodeLlc(v1)).toEqual(rkey);
    expect(decodeLlc(v2)).toEqual({ ...rkey, version: 2 });
    // the body is the same; only the header differs
    expect(v1.subarray(4).equals(v2.subarray(4))).toBe(true);
  });

  it('keeps a v1 message as it is for a v1 link', () => {
    expect(asLlcVersion(rkey, 1)).toBe(rkey);
    expect('version' in asLlcVersion(rkey, 2)).toBe(true);
  });

  it('rejects what is neither, with the protocol library error', () => {
    const bad = Buffer.alloc(44);
    bad[0] = 0x2f;
    expect(() => decodeLlc(bad)).toThrow(/unknown SMC-Rv2 LLC message type/);
    expect(() => decodeLlc(Buffer.alloc(3))).toThrow();
  });
});
