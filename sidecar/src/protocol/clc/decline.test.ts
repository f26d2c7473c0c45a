import { describe, expect, it } from 'vitest';
import { expectDecodeError } from '../testing/expect-decode-error.js';
import { hex } from '../testing/hex.js';
import { type ClcDecline, decodeClcDecline, encodeClcDecline } from './decline.js';
import { SMC_CLC_DECL } from './decline-codes.js';

// Layout: RFC 7609 Appendix A "SMC Decline CLC Message Format"; net/smc/smc_clc.h
// struct smc_clc_msg_decline (28 bytes) and struct smc_clc_msg_decline_v2 (44 bytes).
const DECLINE_V1 = hex(
  'e2d4c3d9 04 001c 10', // header: Decline, 28 bytes, version 1
  '0102030405060708', // sender peer id
  '03030002', // peer diagnosis SMC_CLC_DECL_NOSMCRDEV
  '00 000000', // os type | reserved, reserved
  'e2d4c3d9', // trailer
);

const DECLINE_V2 = hex(
  'e2d4c3d9 04 002c 28', // header: Decline, 44 bytes, version 2, out of sync (bit 3)
  '1112131415161718',
  '04000000', // SMC_CLC_DECL_SYNCERR
  '20 000000', // os type 2 (Linux)
  '03070000 00000000 00000000 09990001', // four further diagnosis codes
  'e2d4c3d9',
);

const V1: ClcDecline = {
  kind: 'decline',
  version: 1,
  eyecatcher: 'SMC-R',
  outOfSync: false,
  peerId: hex('0102030405060708'),
  peerDiagnosis: SMC_CLC_DECL.NOSMCRDEV,
  osType: 0,
  diagnosisV2: null,
};

describe('CLC Decline', () => {
  it('round-trips the hand-written v1 vector', () => {
    expect(decodeClcDecline(DECLINE_V1)).toEqual(V1);
    expect(encodeClcDecline(V1)).toEqual(DECLINE_V1);
  });

  it('round-trips the hand-written v2 vector', () => {
    const v2: ClcDecline = {
      kind: 'decline',
      version: 2,
      eyecatcher: 'SMC-R',
      outOfSync: true,
      peerId: hex('1112131415161718'),
      peerDiagnosis: SMC_CLC_DECL.SYNCERR,
      osType: 2,
      diagnosisV2: [SMC_CLC_DECL.DIFFPREFIX, 0, 0, SMC_CLC_DECL.ERR_RTOK],
    };
    expect(decodeClcDecline(DECLINE_V2)).toEqual(v2);
    expect(encodeClcDecline(v2)).toEqual(DECLINE_V2);
  });

  it('keeps the diagnosis of an SMC-D peer and, like the kernel, does not check the trailer', () => {
    const smcd = hex('e2d4c3c4 04 001c 11 0102030405060708 03040000 00000000 00000000');
    expect(decodeClcDecline(smcd)).toMatchObject({
      eyecatcher: 'SMC-D',
      peerDiagnosis: SMC_CLC_DECL.MODEUNSUPP,
    });
  });

  it('rejects malformed input by field', () => {
    const bad = (at: number, value: number, src = DECLINE_V1): Buffer => {
      const b = Buffer.from(src);
      b[at] = value;
      return b;
    };
    expectDecodeError(() => decodeClcDecline(bad(3, 0)), 'eyecatcher', 'eyecatcher');
    expectDecodeError(() => decodeClcDecline(bad(4, 0)), 'type', 'type');
    expectDecodeError(() => decodeClcDecline(bad(4, 2)), 'type', 'type');
    expectDecodeError(() => decodeClcDecline(bad(7, 0x00)), 'version', 'version');
    expectDecodeError(() => decodeClcDecline(bad(7, 0x12)), 'range', 'typeV1');
    // a v2 header on a 28-byte body
    expectDecodeError(() => decodeClcDecline(bad(7, 0x20)), 'length', 'length');
    expectDecodeError(() => decodeClcDecline(DECLINE_V2.subarray(0, 40)), 'truncated', 'length');
    expectDecodeError(() => decodeClcDecline(hex('e2d4c3d9 04 0004 10')), 'length', 'length');
  });

  it('requires v2 diagnosis codes exactly on v2', () => {
    expect(() => encodeClcDecline({ ...V1, diagnosisV2: [0, 0, 0, 0] })).toThrow(/diagnosisV2/);
    expect(() => encodeClcDecline({ ...V1, version: 2 })).toThrow(/diagnosisV2/);
  });
});
