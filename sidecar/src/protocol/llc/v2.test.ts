import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CDC_MESSAGE_LENGTH, encodeCdcMessage } from '../cdc.js';
import { arbitraryCdc, arbitraryLlc, arbitraryLlcV2 } from '../testing/arbitrary.js';
import { expectDecodeError } from '../testing/expect-decode-error.js';
import { fuzzDecoder } from '../testing/fuzz.js';
import { hex } from '../testing/hex.js';
import { Prng } from '../testing/prng.js';
import { decodeWorkRequestMessageV2 } from '../work-request.js';
import { LLC_DELETE_REASON } from './constants.js';
import { encodeLlcMessage } from './message.js';
import {
  decodeLlcV2Message,
  encodeLlcV2Message,
  llcV2MessageLength,
  type LlcV2Message,
  SMC_WR_BUF_V2_SIZE,
} from './v2.js';

// SMC-Rv2 LLC layouts from net/smc/smc_llc.c: struct smc_llc_hdr (type byte
// with llc_version 2 in the high nibble, u16 length_v2 in host byte order,
// flags), smc_llc_msg_confirm_link, smc_llc_msg_add_link +
// smc_llc_msg_add_link_v2_ext, smc_llc_msg_del_link, smc_llc_msg_req_add_link_v2,
// smc_llc_msg_confirm_rkey, smc_llc_msg_test_link, smc_llc_msg_delete_rkey_v2;
// type codes from enum smc_llc_msg_type (smc_llc.h); the vectors use the
// little-endian length_v2 of x86-64/arm64 kernels.
const MAC = '020000000001';
const GID = '00000000000000000000ffffc0a80101'; // RoCEv2 GID, IPv4-mapped 192.168.1.1
const GID2 = '00000000000000000000ffffc0a80201';

const VECTORS: [string, Buffer, LlcV2Message][] = [
  [
    'CONFIRM LINK v2 request with the v2.1 limits (smc_llc_send_confirm_link)',
    hex('21 2c00 03', MAC, GID, '000123', '01', 'c0ffee00', '02', 'ff', '0000000000000000'),
    {
      kind: 'confirm-link',
      version: 2,
      response: false,
      noRmbeEyecatcher: true,
      senderMac: hex(MAC),
      senderGid: hex(GID),
      senderQpn: 0x123,
      linkNum: 1,
      linkUid: hex('c0ffee00'),
      maxLinks: 2,
      maxConns: 255,
    },
  ],
  [
    'ADD LINK v2 request with the extension and two rkeys (smc_llc_send_add_link, smc_llc_fill_ext_v2)',
    hex(
      '22 6800 00', // 44 + 28 + 2 * 16 = 104 bytes
      MAC,
      '0000',
      GID,
      '000456 02 05 112233',
      '0000000000000000',
      '80 00', // v2_direct, reserved2
      GID2, // client_target_gid
      '0000000000000000', // reserved3
      '0200', // num_rkeys 2, host order
      '00000011 00000022 0000000000001000',
      '00000033 00000044 0000000000002000',
    ),
    {
      kind: 'add-link',
      version: 2,
      response: false,
      rejected: false,
      senderMac: hex(MAC),
      senderGid: hex(GID),
      senderQpn: 0x456,
      linkNum: 2,
      qpMtu: 5,
      initialPsn: 0x112233,
      ext: {
        direct: true,
        clientTargetGid: hex(GID2),
        rtokens: [
          { rmbKey: 0x11, rmbKeyNew: 0x22, rmbVaddrNew: 0x1000n },
          { rmbKey: 0x33, rmbKeyNew: 0x44, rmbVaddrNew: 0x2000n },
        ],
      },
    },
  ],
  [
    'ADD LINK v2 reject response, 44 bytes (smc_llc_cli_add_link_reject)',
    hex('22 2c00 c0', MAC, '0000', GID, '000456 02 05 112233', '0000000000000000'),
    {
      kind: 'add-link',
      version: 2,
      response: true,
      rejected: true,
      senderMac: hex(MAC),
      senderGid: hex(GID),
      senderQpn: 0x456,
      linkNum: 2,
      qpMtu: 5,
      initialPsn: 0x112233,
      ext: null,
    },
  ],
  [
    'DELETE LINK v2 all, orderly (smc_llc_send_link_delete_all)',
    hex('24 2c00 60', '00', '00030000', '00'.repeat(35)),
    {
      kind: 'delete-link',
      version: 2,
      response: false,
      all: true,
      orderly: true,
      linkNum: 0,
      reason: LLC_DELETE_REASON.PROG_INIT_TERM,
    },
  ],
  [
    'REQUEST ADD LINK v2 with two GIDs (smc_llc_send_request_add_link)',
    hex('25 3c00 00', '00'.repeat(20), '02 000000', GID, GID2), // 28 + 2 * 16 = 60 bytes
    { kind: 'req-add-link', version: 2, response: false, gids: [hex(GID), hex(GID2)] },
  ],
  [
    'REQUEST ADD LINK v2 response, 44 zeroed bytes (smc_llc_send_req_add_link_response)',
    hex('25 2c00 80', '00'.repeat(40)),
    { kind: 'req-add-link', version: 2, response: true, gids: [] },
  ],
  [
    'CONFIRM RKEY v2 (smc_llc_send_confirm_rkey)',
    hex('26 2c00 00', '01 0000abcd 00007f0000001000', '02 0000dcba 00007f0000002000', '00'.repeat(13), '00'),
    {
      kind: 'confirm-rkey',
      version: 2,
      response: false,
      negative: false,
      retry: false,
      numRkeys: 1,
      own: { rmbKey: 0xabcd, rmbVaddr: 0x7f0000001000n },
      others: [{ linkId: 2, rmbKey: 0xdcba, rmbVaddr: 0x7f0000002000n }],
    },
  ],
  [
    'TEST LINK v2 response',
    hex('27 2c00 80', '000102030405060708090a0b0c0d0e0f', '00'.repeat(24)),
    { kind: 'test-link', version: 2, response: true, userData: hex('000102030405060708090a0b0c0d0e0f') },
  ],
  [
    'DELETE RKEY v2 request as the kernel sends it: one rkey in 44 bytes (smc_llc_send_delete_rkey)',
    hex('29 2c00 00', '01 00 0000', '00000101', '00'.repeat(32)),
    { kind: 'delete-rkey', version: 2, response: false, negative: false, invalidCount: 0, rkeys: [0x101] },
  ],
  [
    'DELETE RKEY v2 negative response: num_inval_rkeys in the error-mask byte (smc_llc_rmt_delete_rkey)',
    hex('29 2c00 a0', '01 01 0000', '00'.repeat(36)),
    { kind: 'delete-rkey', version: 2, response: true, negative: true, invalidCount: 1, rkeys: [0] },
  ],
  [
    'DELETE RKEY v2 with ten rkeys: 8 + 10 * 4 = 48 bytes',
    hex(
      '29 3000 00',
      '0a 00 0000',
      ...Array.from({ length: 10 }, (_, i) => `000000${(i + 1).toString(16).padStart(2, '0')}`),
    ),
    {
      kind: 'delete-rkey',
      version: 2,
      response: false,
      negative: false,
      invalidCount: 0,
      rkeys: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    },
  ],
];

describe('SMC-Rv2 LLC messages', () => {
  for (const [name, bytes, model] of VECTORS) {
    it(`round-trips ${name}`, () => {
      expect(decodeLlcV2Message(bytes)).toEqual(model);
      expect(encodeLlcV2Message(model)).toEqual(bytes);
      expect(llcV2MessageLength(bytes)).toBe(bytes.length);
    });
  }

  it('reads the host-order length and rkey count big-endian for s390x peers', () => {
    const [, le, model] = VECTORS[1] ?? [];
    if (le === undefined || model === undefined) throw new Error('fixture');
    const be = encodeLlcV2Message(model, { byteOrder: 'big' });
    expect(be.subarray(0, 4)).toEqual(hex('22 0068 00'));
    expect(be.subarray(70, 72)).toEqual(hex('0002'));
    expect(decodeLlcV2Message(be, { byteOrder: 'big' })).toEqual(model);
    // read in the wrong order the length is out of range
    expectDecodeError(() => decodeLlcV2Message(be), 'length', 'length');
  });

  it('decodes from the 8192-byte receive buffer, ignoring what follows the message', () => {
    const rx = Buffer.alloc(SMC_WR_BUF_V2_SIZE, 0xee); // stale bytes from earlier receives
    for (const [, bytes, model] of VECTORS) {
      rx.set(bytes, 0);
      expect(decodeLlcV2Message(rx)).toEqual(model);
      expect(decodeWorkRequestMessageV2(rx, 65536)).toEqual(model);
    }
    // the largest message fits: ADD LINK v2 with 255 rkeys
    const big: LlcV2Message = {
      kind: 'add-link',
      version: 2,
      response: true,
      rejected: false,
      senderMac: hex(MAC),
      senderGid: hex(GID),
      senderQpn: 1,
      linkNum: 3,
      qpMtu: 5,
      initialPsn: 7,
      ext: {
        direct: false,
        clientTargetGid: hex(GID2),
        rtokens: Array.from({ length: 255 }, (_, i) => ({
          rmbKey: i,
          rmbKeyNew: i + 1,
          rmbVaddrNew: BigInt(i) << 12n,
        })),
      },
    };
    const bytes = encodeLlcV2Message(big);
    expect(bytes).toHaveLength(44 + 28 + 255 * 16);
    rx.set(bytes, 0);
    expect(decodeLlcV2Message(rx)).toEqual(big);
  });

  it('demultiplexes CDC and v1 LLC messages in a v2 receive buffer by their first byte', () => {
    const g = new Prng(3);
    const rx = Buffer.alloc(SMC_WR_BUF_V2_SIZE, 0xee);
    const cdc = arbitraryCdc(g, 65536);
    rx.set(encodeCdcMessage(cdc), 0);
    expect(decodeWorkRequestMessageV2(rx, 65536)).toEqual(cdc);
    const llc = arbitraryLlc(g);
    rx.set(encodeLlcMessage(llc), 0);
    expect(decodeWorkRequestMessageV2(rx, 65536)).toEqual(llc);
    expectDecodeError(
      () => decodeWorkRequestMessageV2(rx.subarray(0, CDC_MESSAGE_LENGTH - 1), 1),
      'truncated',
      'message',
    );
  });

  it('rejects malformed input by field', () => {
    const [, confirmLink] = VECTORS[0] ?? [];
    const [, addLink] = VECTORS[1] ?? [];
    const [, reqAdd] = VECTORS[4] ?? [];
    const [, delRkey] = VECTORS[10] ?? [];
    if (!confirmLink || !addLink || !reqAdd || !delRkey) throw new Error('fixture');
    const bad = (src: Buffer, at: number, v: number): Buffer => {
      const b = Buffer.from(src);
      b[at] = v;
      return b;
    };
    const d = (b: Uint8Array) => decodeLlcV2Message(b);
    expectDecodeError(() => d(confirmLink.subarray(0, 43)), 'truncated', 'message');
    expectDecodeError(() => d(bad(confirmLink, 0, 0x01)), 'version', 'type'); // a v1 CONFIRM LINK
    expectDecodeError(() => d(bad(confirmLink, 0, 0xfe)), 'version', 'type'); // CDC
    expectDecodeError(() => d(bad(confirmLink, 0, 0x23)), 'type', 'type'); // no ADD LINK CONT in v2
    expectDecodeError(() => d(bad(confirmLink, 0, 0x28)), 'type', 'type'); // no CONFIRM RKEY CONT in v2
    expectDecodeError(() => d(bad(confirmLink, 1, 43)), 'length', 'length');
    expectDecodeError(() => d(bad(bad(confirmLink, 1, 0x01), 2, 0x20)), 'length', 'length'); // 8193
    expectDecodeError(() => d(bad(confirmLink, 1, 45)), 'truncated', 'length');
    expectDecodeError(() => d(Buffer.concat([bad(confirmLink, 1, 45), hex('00')])), 'length', 'length');
    // ADD LINK v2: counts and lengths that disagree
    expectDecodeError(() => d(bad(addLink, 70, 3)), 'overrun', 'ext.numRkeys');
    expectDecodeError(() => d(bad(addLink, 70, 1)), 'length', 'length');
    expectDecodeError(() => d(bad(bad(addLink, 70, 0), 71, 1)), 'range', 'ext.numRkeys'); // 256
    expectDecodeError(() => d(bad(addLink, 1, 50)), 'length', 'length'); // room for part of the extension
    // REQUEST ADD LINK v2 and DELETE RKEY v2
    expectDecodeError(() => d(bad(reqAdd, 24, 3)), 'overrun', 'gidCount');
    expectDecodeError(() => d(bad(reqAdd, 24, 1)), 'length', 'length');
    expectDecodeError(() => d(bad(delRkey, 4, 11)), 'overrun', 'numRkeys');
    expectDecodeError(() => d(bad(delRkey, 4, 9)), 'length', 'length');
  });

  it('refuses to encode more entries than the counts hold', () => {
    expect(() =>
      encodeLlcV2Message({
        kind: 'delete-rkey',
        version: 2,
        response: false,
        negative: false,
        invalidCount: 0,
        rkeys: new Array<number>(256).fill(1),
      }),
    ).toThrow(/rkeys/);
    expect(() =>
      encodeLlcV2Message({ kind: 'req-add-link', version: 2, response: false, gids: [Buffer.alloc(15)] }),
    ).toThrow(/gids\[0\]/);
  });

  it('encode then decode is the identity for random valid messages of every type, both byte orders', () => {
    const g = new Prng(12);
    const seen = new Set<string>();
    for (let i = 0; i < 4000; i++) {
      const m = arbitraryLlcV2(g);
      seen.add(m.kind);
      const byteOrder = g.bool() ? 'little' : 'big';
      expect(
        isDeepStrictEqual(decodeLlcV2Message(encodeLlcV2Message(m, { byteOrder }), { byteOrder }), m),
      ).toBe(true);
    }
    expect(seen.size).toBe(7);
  });

  const decoders: [string, (b: Uint8Array) => unknown][] = [
    ['SMC-Rv2 LLC message', (b) => decodeLlcV2Message(b)],
    ['SMC-Rv2 LLC message (big-endian)', (b) => decodeLlcV2Message(b, { byteOrder: 'big' })],
    ['v2 work request', (b) => decodeWorkRequestMessageV2(b, 65536)],
  ];
  for (const [name, decode] of decoders) {
    it(`fuzz: 100000 mutated inputs to the ${name} decoder decode or throw ProtocolDecodeError`, () => {
      const g = new Prng(name.length * 17 + 1);
      const byteOrder = name.includes('big') ? 'big' : 'little';
      const seeds = [
        ...VECTORS.map(([, b]) => b),
        ...Array.from({ length: 64 }, () => encodeLlcV2Message(arbitraryLlcV2(g), { byteOrder })),
        ...Array.from({ length: 8 }, () => encodeCdcMessage(arbitraryCdc(g, 65536))),
      ];
      const result = fuzzDecoder(g, 100_000, seeds, decode, (value) => {
        if (typeof value === 'object' && value !== null && 'version' in value) {
          const m = value as LlcV2Message;
          const bytes = encodeLlcV2Message(m, { byteOrder });
          if (!isDeepStrictEqual(decodeLlcV2Message(bytes, { byteOrder }), m))
            throw new Error('re-encoding changed');
        }
      });
      expect(result.decoded).toBeGreaterThan(100);
      expect(result.rejected).toBeGreaterThan(1000);
    });
  }
});
