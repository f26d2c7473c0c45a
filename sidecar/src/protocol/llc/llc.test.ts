import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { arbitraryLlc } from '../testing/arbitrary.js';
import { expectDecodeError } from '../testing/expect-decode-error.js';
import { fuzzDecoder } from '../testing/fuzz.js';
import { hex } from '../testing/hex.js';
import { Prng } from '../testing/prng.js';
import { decodeLlcAddLinkCont, encodeLlcAddLinkCont } from './add-link-cont.js';
import { decodeLlcAddLink } from './add-link.js';
import { decodeLlcConfirmLink } from './confirm-link.js';
import { decodeLlcConfirmRkeyCont } from './confirm-rkey-cont.js';
import { decodeLlcConfirmRkey, encodeLlcConfirmRkey } from './confirm-rkey.js';
import { LLC_DELETE_REASON } from './constants.js';
import { decodeLlcDeleteLink } from './delete-link.js';
import { decodeLlcDeleteRkey } from './delete-rkey.js';
import { decodeLlcMessage, encodeLlcMessage, type LlcMessage } from './message.js';
import { decodeLlcTestLink } from './test-link.js';

// Every vector below is 44 bytes laid out per the struct named in its case,
// all from net/smc/smc_llc.c (header struct smc_llc_hdr: type, length 44,
// reserved:4|add_link_rej_rsn:4, flags) and RFC 7609 Appendix A "LLC messages".
const MAC = 'aabbccddeeff';
const GID = 'fe800000000000000211223344556677';

const VECTORS: [string, Buffer, LlcMessage][] = [
  [
    'CONFIRM LINK request (struct smc_llc_msg_confirm_link)',
    hex('01 2c 00 03', MAC, GID, '000123', '01', 'c0ffee00', '02', '00', '0000000000000000'),
    {
      kind: 'confirm-link',
      response: false,
      noRmbeEyecatcher: true,
      senderMac: hex(MAC),
      senderGid: hex(GID),
      senderQpn: 0x123,
      linkNum: 1,
      linkUid: hex('c0ffee00'),
      maxLinks: 2,
      maxConns: 0,
    },
  ],
  [
    'ADD LINK rejected response (struct smc_llc_msg_add_link)',
    hex('02 2c 01 c0', MAC, '0000', GID, '000456', '02', '04', '112233', '0000000000000000'),
    {
      kind: 'add-link',
      response: true,
      rejected: true,
      rejectReason: 1,
      senderMac: hex(MAC),
      senderGid: hex(GID),
      senderQpn: 0x456,
      linkNum: 2,
      qpMtu: 4,
      initialPsn: 0x112233,
    },
  ],
  [
    'ADD LINK CONTINUATION (struct smc_llc_msg_add_link_cont)',
    hex(
      '03 2c 00 00',
      '02 05 0000', // link 2, five rkeys still to go: two in this message
      '00000011 00000022 0000000000001000',
      '00000033 00000044 0000000000002000',
      '00000000',
    ),
    {
      kind: 'add-link-cont',
      response: false,
      linkNum: 2,
      numRkeys: 5,
      rtokens: [
        { rmbKey: 0x11, rmbKeyNew: 0x22, rmbVaddrNew: 0x1000n },
        { rmbKey: 0x33, rmbKeyNew: 0x44, rmbVaddrNew: 0x2000n },
      ],
    },
  ],
  [
    'DELETE LINK all, orderly (struct smc_llc_msg_del_link)',
    hex('04 2c 00 60', '00', '00030000', '00'.repeat(35)),
    {
      kind: 'delete-link',
      response: false,
      all: true,
      orderly: true,
      linkNum: 0,
      reason: LLC_DELETE_REASON.PROG_INIT_TERM,
    },
  ],
  [
    'CONFIRM RKEY with one other link (struct smc_llc_msg_confirm_rkey)',
    hex('06 2c 00 00', '01 0000abcd 00007f0000001000', '02 0000dcba 00007f0000002000', '00'.repeat(13), '00'),
    {
      kind: 'confirm-rkey',
      response: false,
      negative: false,
      retry: false,
      numRkeys: 1,
      own: { rmbKey: 0xabcd, rmbVaddr: 0x7f0000001000n },
      others: [{ linkId: 2, rmbKey: 0xdcba, rmbVaddr: 0x7f0000002000n }],
    },
  ],
  [
    'TEST LINK response (struct smc_llc_msg_test_link)',
    hex('07 2c 00 80', '000102030405060708090a0b0c0d0e0f', '00'.repeat(24)),
    { kind: 'test-link', response: true, userData: hex('000102030405060708090a0b0c0d0e0f') },
  ],
  [
    'CONFIRM RKEY CONTINUATION (struct smc_llc_msg_confirm_rkey_cont)',
    hex('08 2c 00 a0', '01', '03 00000077 0000000000003000', '00'.repeat(26)),
    {
      kind: 'confirm-rkey-cont',
      response: true,
      negative: true,
      rtokens: [{ linkId: 3, rmbKey: 0x77, rmbVaddr: 0x3000n }],
    },
  ],
  [
    'DELETE RKEY negative response (struct smc_llc_msg_delete_rkey)',
    hex('09 2c 00 a0', '02 40 0000', '00000101 00000202', '00'.repeat(24), '00000000'),
    { kind: 'delete-rkey', response: true, negative: true, errorMask: 0x40, rkeys: [0x101, 0x202] },
  ],
];

describe('LLC messages', () => {
  for (const [name, bytes, model] of VECTORS) {
    it(`round-trips ${name}`, () => {
      expect(bytes).toHaveLength(44);
      expect(decodeLlcMessage(bytes)).toEqual(model);
      expect(encodeLlcMessage(model)).toEqual(bytes);
    });
  }

  it('type-specific decoders accept only their own type', () => {
    const [, confirmLink] = VECTORS[0] ?? [];
    if (confirmLink === undefined) throw new Error('missing vector');
    expect(decodeLlcConfirmLink(confirmLink).kind).toBe('confirm-link');
    for (const decode of [
      decodeLlcAddLink,
      decodeLlcAddLinkCont,
      decodeLlcDeleteLink,
      decodeLlcConfirmRkey,
      decodeLlcConfirmRkeyCont,
      decodeLlcDeleteRkey,
      decodeLlcTestLink,
    ]) {
      expectDecodeError(() => decode(confirmLink), 'type', 'type');
    }
  });

  it('rejects malformed input by field', () => {
    const base = hex('07 2c 00 00', '00'.repeat(40));
    const bad = (at: number, v: number): Buffer => {
      const b = Buffer.from(base);
      b[at] = v;
      return b;
    };
    expectDecodeError(() => decodeLlcMessage(base.subarray(0, 43)), 'truncated', 'message');
    expectDecodeError(() => decodeLlcMessage(Buffer.concat([base, hex('00')])), 'length', 'message');
    expectDecodeError(() => decodeLlcMessage(bad(1, 48)), 'length', 'length');
    expectDecodeError(() => decodeLlcMessage(bad(0, 0x05)), 'type', 'type');
    expectDecodeError(() => decodeLlcMessage(bad(0, 0x00)), 'type', 'type');
    expectDecodeError(() => decodeLlcMessage(bad(0, 0xfe)), 'type', 'type'); // CDC is not LLC
    expectDecodeError(() => decodeLlcMessage(bad(0, 0x21)), 'version', 'type'); // SMC-Rv2 CONFIRM LINK
    // counts that overrun the 44 bytes
    expectDecodeError(() => decodeLlcMessage(hex('06 2c 00 00 04', '00'.repeat(39))), 'overrun', 'numRkeys');
    expectDecodeError(() => decodeLlcMessage(hex('08 2c 00 00 04', '00'.repeat(39))), 'overrun', 'numRkeys');
    expectDecodeError(() => decodeLlcMessage(hex('09 2c 00 00 09', '00'.repeat(39))), 'overrun', 'numRkeys');
  });

  it('follows the kernel on counts: confirm rkey 3 keeps two entries, add link cont keeps min(n, 2)', () => {
    const rkey3 = hex('06 2c 00 00 03', '00'.repeat(39));
    expect(decodeLlcConfirmRkey(rkey3).others).toHaveLength(2);
    const cont0 = hex('03 2c 00 00 01 00', '00'.repeat(38));
    expect(decodeLlcAddLinkCont(cont0).rtokens).toHaveLength(0);
  });

  it('refuses to encode entry lists that disagree with their counts', () => {
    expect(() =>
      encodeLlcAddLinkCont({ kind: 'add-link-cont', response: false, linkNum: 1, numRkeys: 1, rtokens: [] }),
    ).toThrow(/rtokens/);
    expect(() =>
      encodeLlcConfirmRkey({
        kind: 'confirm-rkey',
        response: false,
        negative: false,
        retry: false,
        numRkeys: 4,
        own: { rmbKey: 0, rmbVaddr: 0n },
        others: [],
      }),
    ).toThrow(/others/);
  });

  it('encode then decode is the identity for random valid messages of every type', () => {
    const g = new Prng(11);
    const seen = new Set<string>();
    for (let i = 0; i < 4000; i++) {
      const m = arbitraryLlc(g);
      seen.add(m.kind);
      expect(isDeepStrictEqual(decodeLlcMessage(encodeLlcMessage(m)), m)).toBe(true);
    }
    expect(seen.size).toBe(8);
  });

  const decoders: [string, (b: Uint8Array) => LlcMessage][] = [
    ['any LLC message', decodeLlcMessage],
    ['CONFIRM LINK', decodeLlcConfirmLink],
    ['ADD LINK', decodeLlcAddLink],
    ['ADD LINK CONTINUATION', decodeLlcAddLinkCont],
    ['DELETE LINK', decodeLlcDeleteLink],
    ['CONFIRM RKEY', decodeLlcConfirmRkey],
    ['CONFIRM RKEY CONTINUATION', decodeLlcConfirmRkeyCont],
    ['DELETE RKEY', decodeLlcDeleteRkey],
    ['TEST LINK', decodeLlcTestLink],
  ];
  for (const [name, decode] of decoders) {
    it(`fuzz: 100000 mutated inputs to the ${name} decoder decode or throw ProtocolDecodeError`, () => {
      const g = new Prng(name.length * 31 + 5);
      const seeds = [
        ...VECTORS.map(([, b]) => b),
        ...Array.from({ length: 64 }, () => encodeLlcMessage(arbitraryLlc(g))),
      ];
      const result = fuzzDecoder(g, 100_000, seeds, decode, (value) => {
        const bytes = encodeLlcMessage(value);
        if (!encodeLlcMessage(decodeLlcMessage(bytes)).equals(bytes)) throw new Error('re-encoding changed');
      });
      expect(result.decoded).toBeGreaterThan(100);
      expect(result.rejected).toBeGreaterThan(1000);
    });
  }
});
