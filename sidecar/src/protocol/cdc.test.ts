import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type CdcMessage, decodeCdcMessage, encodeCdcMessage } from './cdc.js';
import { decodeWorkRequestMessage } from './work-request.js';
import { arbitraryCdc, arbitraryLlc } from './testing/arbitrary.js';
import { expectDecodeError } from './testing/expect-decode-error.js';
import { fuzzDecoder } from './testing/fuzz.js';
import { hex } from './testing/hex.js';
import { Prng } from './testing/prng.js';
import { encodeLlcMessage } from './llc/message.js';

// Layout: RFC 7609 Appendix A "Connection Data Control (CDC) message format";
// net/smc/smc_cdc.h struct smc_cdc_msg and union smc_cdc_cursor; flag bits from
// struct smc_cdc_producer_flags / smc_cdc_conn_state_flags (net/smc/smc.h, big-endian bitfields).
const CDC = hex(
  'fe 2c', // type, length 44
  '0007', // sequence number
  '00000042', // alert token
  '0000 0003 00001000', // producer cursor: reserved, wrap 3, count 4096
  '0000 0002 00003ff0', // consumer cursor: reserved, wrap 2, count 16368
  '90', // write blocked | cursor update requested
  '80', // peer done writing
  '00'.repeat(18),
);

const MODEL: CdcMessage = {
  kind: 'cdc',
  seqno: 7,
  token: 0x42,
  producer: { wrap: 3, count: 4096 },
  consumer: { wrap: 2, count: 16368 },
  producerFlags: {
    writeBlocked: true,
    urgentPending: false,
    urgentPresent: false,
    cursorUpdateRequested: true,
    failoverValidation: false,
  },
  connectionState: { peerDoneWriting: true, peerConnectionClosed: false, peerConnectionAbort: false },
};

describe('CDC message', () => {
  it('round-trips the hand-written vector', () => {
    expect(CDC).toHaveLength(44);
    expect(decodeCdcMessage(CDC, 16384)).toEqual(MODEL);
    expect(encodeCdcMessage(MODEL)).toEqual(CDC);
  });

  it('maps every flag bit as the kernel bitfields do', () => {
    const b = Buffer.from(CDC);
    b[24] = 0x78;
    b[25] = 0x60;
    const m = decodeCdcMessage(b, 16384);
    expect(m.producerFlags).toEqual({
      writeBlocked: false,
      urgentPending: true,
      urgentPresent: true,
      cursorUpdateRequested: true,
      failoverValidation: true,
    });
    expect(m.connectionState).toEqual({
      peerDoneWriting: false,
      peerConnectionClosed: true,
      peerConnectionAbort: true,
    });
  });

  it('ignores reserved bytes', () => {
    const b = Buffer.from(CDC);
    b[8] = 0xff; // producer cursor reserved
    b[16] = 0xff;
    b[24] = 0x97; // reserved producer flag bits set
    b[43] = 0xff;
    expect(decodeCdcMessage(b, 16384)).toEqual(MODEL);
  });

  it('checks cursors against the RMBE they index', () => {
    expectDecodeError(() => decodeCdcMessage(CDC, 4096), 'overrun', 'producer.count');
    expectDecodeError(
      () => decodeCdcMessage(CDC, { localRmbeSize: 65536, peerRmbeSize: 16368 }),
      'overrun',
      'consumer.count',
    );
    expect(decodeCdcMessage(CDC, { localRmbeSize: 4097, peerRmbeSize: 16369 })).toEqual(MODEL);
  });

  it('rejects malformed input by field', () => {
    const bad = (at: number, v: number): Buffer => {
      const b = Buffer.from(CDC);
      b[at] = v;
      return b;
    };
    expectDecodeError(() => decodeCdcMessage(bad(0, 0x01), 16384), 'type', 'type');
    expectDecodeError(() => decodeCdcMessage(bad(1, 0x30), 16384), 'length', 'length');
    expectDecodeError(() => decodeCdcMessage(CDC.subarray(0, 20), 16384), 'truncated', 'message');
    expectDecodeError(() => decodeCdcMessage(Buffer.concat([CDC, hex('00')]), 16384), 'length', 'message');
  });

  it('demultiplexes work requests by their first byte', () => {
    expect(decodeWorkRequestMessage(CDC, 16384).kind).toBe('cdc');
    const test = encodeLlcMessage({ kind: 'test-link', response: false, userData: Buffer.alloc(16) });
    expect(decodeWorkRequestMessage(test, 16384).kind).toBe('test-link');
    expectDecodeError(() => decodeWorkRequestMessage(hex(''), 16384), 'truncated', 'type');
  });

  it('encode then decode is the identity for random valid messages', () => {
    const g = new Prng(3);
    for (let i = 0; i < 3000; i++) {
      const size = 2 ** g.int(14, 20);
      const m = arbitraryCdc(g, size);
      expect(isDeepStrictEqual(decodeCdcMessage(encodeCdcMessage(m), size), m)).toBe(true);
    }
  });

  it('fuzz: 100000 mutated CDC inputs decode or throw ProtocolDecodeError', () => {
    const g = new Prng(99);
    const seeds = [CDC, ...Array.from({ length: 64 }, () => encodeCdcMessage(arbitraryCdc(g, 16384)))];
    const result = fuzzDecoder(
      g,
      100_000,
      seeds,
      (b) => decodeCdcMessage(b, 16384),
      (m) => {
        expect(m.producer.count).toBeLessThan(16384);
      },
    );
    expect(result.decoded).toBeGreaterThan(1000);
    expect(result.fields.has('overrun:producer.count')).toBe(true);
  });

  it('fuzz: 100000 mutated work requests decode or throw ProtocolDecodeError', () => {
    const g = new Prng(100);
    const seeds = [
      ...Array.from({ length: 32 }, () => encodeCdcMessage(arbitraryCdc(g, 65536))),
      ...Array.from({ length: 32 }, () => encodeLlcMessage(arbitraryLlc(g))),
    ];
    const result = fuzzDecoder(g, 100_000, seeds, (b) => decodeWorkRequestMessage(b, 65536));
    expect(result.decoded).toBeGreaterThan(1000);
  });
});
