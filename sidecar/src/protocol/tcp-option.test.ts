import { describe, expect, it } from 'vitest';
import { ProtocolDecodeError } from './errors.js';
import {
  decodeSmcTcpOption,
  encodeSmcTcpOption,
  findSmcTcpOption,
  hasSmcTcpOption,
  parseTcpOptions,
  savedSynOptions,
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

describe('savedSynOptions (TCP_SAVED_SYN)', () => {
  // MSS 1460, SACK permitted, the SMC option, NOP padding: 16 bytes of options.
  const options = Buffer.from('020405b40402fe06e2d4c3d901010101', 'hex');
  const tcp = (flags: number): Buffer => {
    const h = Buffer.alloc(20 + options.byteLength);
    h.writeUInt16BE(40000, 0);
    h.writeUInt16BE(8080, 2);
    h[12] = ((20 + options.byteLength) / 4) << 4;
    h[13] = flags;
    options.copy(h, 20);
    return h;
  };
  const ipv4 = Buffer.from('4500004c00004000400600000a4d00020a4d0001', 'hex');
  const ipv6 = Buffer.alloc(40);
  ipv6[0] = 0x60;
  ipv6[6] = 6;

  it('finds the options after an IPv4 or IPv6 header, and the SMC option in them', () => {
    for (const ip of [ipv4, ipv6]) {
      const got = savedSynOptions(Buffer.concat([ip, tcp(0x02)]));
      expect(got.equals(options)).toBe(true);
      expect(findSmcTcpOption(got)).toBe(6);
    }
  });

  it('refuses what is not a SYN, not TCP, or cut short, with a ProtocolDecodeError', () => {
    expect(() => savedSynOptions(Buffer.concat([ipv4, tcp(0x12)]))).toThrow(ProtocolDecodeError);
    const udp = Buffer.from(ipv4);
    udp[9] = 17;
    expect(() => savedSynOptions(Buffer.concat([udp, tcp(0x02)]))).toThrow(/not TCP/);
    expect(() => savedSynOptions(Buffer.concat([ipv4, tcp(0x02)]).subarray(0, 45))).toThrow(
      ProtocolDecodeError,
    );
    expect(() => savedSynOptions(Buffer.from([0x50]))).toThrow(ProtocolDecodeError);
  });
});
