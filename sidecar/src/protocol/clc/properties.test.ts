import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  arbitraryAcceptConfirm,
  arbitraryAcceptConfirmV2,
  arbitraryDecline,
  arbitraryProposal,
} from '../testing/arbitrary.js';
import { fuzzDecoder } from '../testing/fuzz.js';
import { Prng } from '../testing/prng.js';
import { decodeClcAcceptConfirm, encodeClcAcceptConfirm } from './accept-confirm.js';
import {
  decodeClcAcceptConfirmAny,
  decodeClcAcceptConfirmV2,
  encodeClcAcceptConfirmV2,
} from './accept-confirm-v2.js';
import { decodeClcDecline, encodeClcDecline } from './decline.js';
import { clcMessageLength, decodeClcHeader } from './header.js';
import { type ClcMessage, decodeClcMessage, encodeClcMessage } from './message.js';
import { decodeClcProposal, encodeClcProposal } from './proposal.js';

// Property tests over the layouts of net/smc/smc_clc.h (see the per-type tests for the byte vectors).
const ROUND_TRIPS = 1_000;
const FUZZ = 100_000;

function seeds(g: Prng, n: number, make: (g: Prng) => ClcMessage): Buffer[] {
  return Array.from({ length: n }, () => encodeClcMessage(make(g)));
}

describe('CLC codec properties', () => {
  it('encode then decode is the identity for random valid messages of every type', () => {
    const g = new Prng(1);
    for (let i = 0; i < ROUND_TRIPS; i++) {
      const p = arbitraryProposal(g);
      expect(decodeClcProposal(encodeClcProposal(p))).toEqual(p);
      const a = arbitraryAcceptConfirm(g);
      expect(decodeClcAcceptConfirm(encodeClcAcceptConfirm(a))).toEqual(a);
      const d = arbitraryDecline(g);
      expect(decodeClcDecline(encodeClcDecline(d))).toEqual(d);
      for (const m of [p, a, d]) {
        const bytes = encodeClcMessage(m);
        expect(isDeepStrictEqual(decodeClcMessage(bytes), m)).toBe(true);
        expect(clcMessageLength(bytes)).toBe(bytes.length);
      }
    }
  });

  it('encode then decode is the identity for random valid v2 Accept/Confirm messages', () => {
    const g = new Prng(2);
    for (let i = 0; i < ROUND_TRIPS * 2; i++) {
      const m = arbitraryAcceptConfirmV2(g);
      const bytes = encodeClcAcceptConfirmV2(m);
      expect(isDeepStrictEqual(decodeClcAcceptConfirmV2(bytes), m)).toBe(true);
      expect(isDeepStrictEqual(decodeClcMessage(bytes), m)).toBe(true);
      expect(clcMessageLength(bytes)).toBe(bytes.length);
    }
  });

  const cases: [string, (g: Prng) => ClcMessage, (b: Uint8Array) => ClcMessage][] = [
    ['Proposal', arbitraryProposal, decodeClcProposal],
    ['Accept/Confirm', arbitraryAcceptConfirm, decodeClcAcceptConfirm],
    ['v2 Accept/Confirm', arbitraryAcceptConfirmV2, decodeClcAcceptConfirmV2],
    [
      'Accept/Confirm of either version',
      (g) => g.pick([arbitraryAcceptConfirm, arbitraryAcceptConfirmV2])(g),
      decodeClcAcceptConfirmAny,
    ],
    ['Decline', arbitraryDecline, decodeClcDecline],
    [
      'any CLC message',
      (g) => g.pick([arbitraryProposal, arbitraryAcceptConfirm, arbitraryDecline])(g),
      decodeClcMessage,
    ],
    [
      'any CLC message of either version',
      (g) =>
        g.pick([arbitraryProposal, arbitraryAcceptConfirm, arbitraryAcceptConfirmV2, arbitraryDecline])(g),
      (b) => decodeClcMessage(b),
    ],
  ];

  for (const [name, make, decode] of cases) {
    it(`fuzz: ${FUZZ} mutated ${name} inputs decode or throw ProtocolDecodeError`, () => {
      const g = new Prng(name.length * 7919);
      const result = fuzzDecoder(g, FUZZ, seeds(g, 64, make), decode, (value, input) => {
        // whatever decodes must re-encode to a message of the same length that decodes the same
        const bytes = encodeClcMessage(value);
        if (bytes.length !== input.length || !encodeClcMessage(decodeClcMessage(bytes)).equals(bytes)) {
          throw new Error(`re-encoding changed ${Buffer.from(input).toString('hex')}`);
        }
      });
      expect(result.decoded).toBeGreaterThan(100);
      expect(result.rejected).toBeGreaterThan(FUZZ / 2);
    });
  }

  it(`fuzz: ${FUZZ} header inputs decode or throw ProtocolDecodeError`, () => {
    const g = new Prng(42);
    const all = [...seeds(g, 32, arbitraryProposal), ...seeds(g, 32, arbitraryDecline)];
    const result = fuzzDecoder(g, FUZZ, all, decodeClcHeader);
    expect(result.decoded).toBeGreaterThan(1000);
  });
});
