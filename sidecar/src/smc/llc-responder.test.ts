import { describe, expect, it } from 'vitest';
import { LLC_FLAG_RESP, LLC_FLAG_RKEY_NEG, LLC_FLAG_RKEY_RETRY } from '../protocol/llc/constants.js';
import { type AnyLlcMessage, decodeLlc, encodeLlc } from './llc-codec.js';
import { answerLlcRequest, PeerRkeyTable, SMC_RMBS_PER_LGR_MAX } from './llc-responder.js';

// Issue 12 item 4: what a peer's LLC requests may make us keep is bounded by the protocol's own
// limit (SMC_RMBS_PER_LGR_MAX rtokens per link group, smc_rtoken_add), and excess is refused as the
// kernel's smc_llc_rmt_conf_rkey does (negative + retry flags in the response).

/** A CONFIRM RKEY request as the peer puts it on the wire. */
function confirmRkey(rkey: number, vaddr: bigint, version: 1 | 2 = 1): Buffer {
  const m: AnyLlcMessage = {
    kind: 'confirm-rkey',
    response: false,
    negative: false,
    retry: false,
    numRkeys: 0,
    own: { rmbKey: rkey, rmbVaddr: vaddr },
    others: [],
    ...(version === 2 ? { version: 2 as const } : {}),
  };
  return encodeLlc(m);
}

function answerBytes(wire: Buffer, table: PeerRkeyTable): { bytes: Buffer | null; refused: string | null } {
  const a = answerLlcRequest(decodeLlc(wire), table);
  return { bytes: a.reply === null ? null : encodeLlc(a.reply), refused: a.refused };
}

describe('PeerRkeyTable', () => {
  it('holds at most SMC_RMBS_PER_LGR_MAX (255) RMBs; duplicates take no room', () => {
    const t = new PeerRkeyTable();
    expect(t.max).toBe(SMC_RMBS_PER_LGR_MAX);
    for (let i = 0; i < 255; i++) expect(t.add(i, 0x1000n * BigInt(i))).toBe('added');
    expect(t.add(7, 0x7000n)).toBe('known');
    expect(t.add(9999, 1n)).toBe('full');
    expect(t.size).toBe(255);
    expect(t.has(9999, 1n)).toBe(false);
    expect(t.deleteRkey(3)).toBe(true);
    expect(t.deleteRkey(3)).toBe(false);
    expect(t.add(9999, 1n)).toBe('added');
    expect(t.size).toBe(255);
  });
});

describe('answerLlcRequest', () => {
  it('10,000 CONFIRM RKEYs leave the table at 255; the rest are answered negative with retry, byte for byte', () => {
    const t = new PeerRkeyTable();
    let refused = 0;
    const wrong: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      const wire = confirmRkey(0x100 + i, 0x7f0000000000n + BigInt(i) * 0x10000n, i % 2 === 0 ? 1 : 2);
      const a = answerBytes(wire, t);
      // Same message back, byte 3 carrying the flags: response, and on refusal negative + retry.
      const flags = i < 255 ? LLC_FLAG_RESP : LLC_FLAG_RESP | LLC_FLAG_RKEY_NEG | LLC_FLAG_RKEY_RETRY;
      if (a.bytes === null || a.bytes[3] !== flags || !a.bytes.subarray(4).equals(wire.subarray(4)))
        wrong.push(i);
      if (a.refused !== null) refused++;
    }
    expect(wrong).toEqual([]);
    expect(t.size).toBe(255);
    expect(refused).toBe(10_000 - 255);
  });

  it('the same RMB confirmed again is answered positive and takes no room', () => {
    const t = new PeerRkeyTable();
    for (let i = 0; i < 10_000; i++) expect(answerBytes(confirmRkey(42, 0x5000n), t).refused).toBeNull();
    expect(t.size).toBe(1);
  });

  it('DELETE RKEY reports the rkeys it does not hold (v1 error mask, bit 7 = rkeys[0]; v2 count)', () => {
    const t = new PeerRkeyTable();
    t.add(1, 0x10n);
    t.add(3, 0x30n);
    const v1 = answerLlcRequest(
      { kind: 'delete-rkey', response: false, negative: false, errorMask: 0, rkeys: [1, 2, 3, 4] },
      t,
    );
    expect(v1.reply).toMatchObject({ response: true, negative: true, errorMask: 0b0101_0000 });
    expect(t.size).toBe(0);
    t.add(5, 0x50n);
    const v2 = answerLlcRequest(
      { kind: 'delete-rkey', version: 2, response: false, negative: false, invalidCount: 0, rkeys: [5] },
      t,
    );
    expect(v2.reply).toMatchObject({ response: true, negative: false, invalidCount: 0 });
  });

  it('a flood of every other request type keeps no state', () => {
    const t = new PeerRkeyTable();
    t.add(1, 0x10n);
    const requests: AnyLlcMessage[] = [
      { kind: 'test-link', response: false, userData: Buffer.alloc(16, 7) },
      {
        kind: 'delete-rkey',
        response: false,
        negative: false,
        errorMask: 0,
        rkeys: [9, 10, 11, 12, 13, 14, 15, 16],
      },
      {
        kind: 'add-link',
        response: false,
        rejected: false,
        rejectReason: 0,
        senderMac: Buffer.alloc(6),
        senderGid: Buffer.alloc(16),
        senderQpn: 5,
        linkNum: 2,
        qpMtu: 3,
        initialPsn: 1,
      },
    ];
    for (const m of requests) {
      for (let i = 0; i < 10_000; i++) answerLlcRequest(decodeLlc(encodeLlc(m)), t);
    }
    expect(t.size).toBe(1);
    expect(answerLlcRequest(requests[2] as AnyLlcMessage, t)).toEqual({
      reply: null,
      endLink: false,
      refused: 'llc-unsupported',
    });
  });
});
