import { describe, expect, it } from 'vitest';
import { ProtocolDecodeError } from './errors.js';
import {
  decodeSmcTcpOption,
  encodeSmcTcpOption,
  findSmcTcpOption,
  hasSmcTcpOption,
  parseTcpOptions,
} from './tcp-option.js';
import { expectDecodeError } from './testing/expect-decode-error.js';
import { fuzzDecoder } from './testing/fuzz.js';
import { hex } from './testing/hex.js';
import { Prng } from './testing/prng.js';

// RFC 7609 "TCP Option" / RFC 6994: kind 254, length 6, ExID 0xE2D4C3D9;
// kernel include/net/tcp.h TCPOPT_EXP, TCPOLEN_EXP_SMC_BASE, TCPOPT_SMC_MAGIC.
const SMC_OPTION = hex('fe 06 e2d4c3d9');

describe('SMC TCP option', () => {
  it('encodes to the RFC 7609 bytes and decodes back', () => {
    expect(encodeSmcTcpOption()).toEqual(SMC_OPTION);
    expect(decodeSmcTcpOption(SMC_OPTION)).toEqual({ kind: 254, length: 6, exid: 0xe2d4c3d9 });
  });

  it('rejects wrong kind, length and ExID by field', () => {
    expectDecodeError(() => decodeSmcTcpOption(hex('fd 06 e2d4c3d9')), 'type', 'kind');
    expectDecodeError(() => decodeSmcTcpOption(hex('fe 08 e2d4c3d9 0000')), 'length', 'length');
    expectDecodeError(() => decodeSmcTcpOption(hex('fe 06 e2d4c3c4')), 'eyecatcher', 'exid');
    expectDecodeError(() => decodeSmcTcpOption(hex('fe')), 'truncated', 'length');
  });

  it('finds the option in a typical SYN option list', () => {
    // MSS 1460, SACK permitted, timestamps, NOP, window scale 7, then SMC (as Linux orders them).
    const syn = hex('020405b4 0402 080a 00000001 00000000 01 030307', 'fe06e2d4c3d9');
    expect(findSmcTcpOption(syn)).toBe(20);
    expect(hasSmcTcpOption(syn)).toBe(true);
    expect(parseTcpOptions(syn).map((o) => o.kind)).toEqual([2, 4, 8, 1, 3, 254]);
  });

  it('ignores other experiments, stops at EOL, and requires the exact length', () => {
    expect(hasSmcTcpOption(hex('fe06 12345678'))).toBe(false); // other ExID
    expect(hasSmcTcpOption(hex('00 fe06e2d4c3d9'))).toBe(false); // after EOL
    expect(hasSmcTcpOption(hex('fe08 e2d4c3d9 0000'))).toBe(false); // kernel wants length 6 exactly
    expect(hasSmcTcpOption(hex('0101 fe06e2d4c3d9 00'))).toBe(true);
    expect(hasSmcTcpOption(hex(''))).toBe(false);
  });

  it('reports malformed option lists by field', () => {
    expectDecodeError(() => parseTcpOptions(hex('02')), 'truncated', 'option[0].length');
    expectDecodeError(() => parseTcpOptions(hex('0101 0201')), 'length', 'option[2].length');
    expectDecodeError(() => parseTcpOptions(hex('020405')), 'overrun', 'option[0].length');
  });

  it('fuzz: 100k mutated option strings either parse or fail with ProtocolDecodeError', () => {
    const g = new Prng(0x7c9);
    const seeds = [SMC_OPTION, hex('020405b4 0402 080a 00000001 00000000 01 030307 fe06e2d4c3d9')];
    const r1 = fuzzDecoder(g, 100_000, seeds, (b) => findSmcTcpOption(b));
    const r2 = fuzzDecoder(g, 100_000, seeds, decodeSmcTcpOption, (v) => expect(v.exid).toBe(0xe2d4c3d9));
    expect(r1.decoded).toBeGreaterThan(1000);
    expect(r1.rejected).toBeGreaterThan(1000);
    expect(r2.decoded + r2.rejected).toBe(100_000);
    expect(new ProtocolDecodeError('length', 'x', 'y').message).toBe('x: y (length)');
  });
});
