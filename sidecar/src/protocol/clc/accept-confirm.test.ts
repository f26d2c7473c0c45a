import { describe, expect, it } from 'vitest';
import { expectDecodeError } from '../testing/expect-decode-error.js';
import { hex } from '../testing/hex.js';
import { type ClcAcceptConfirm, decodeClcAcceptConfirm, encodeClcAcceptConfirm } from './accept-confirm.js';

// Layout: RFC 7609 Appendix A "SMC Accept CLC Message Format" and "SMC Confirm
// CLC Message Format"; net/smc/smc_clc.h struct smc_clc_msg_accept_confirm +
// struct smcr_clc_msg_accept_confirm; SMCR_CLC_ACCEPT_CONFIRM_LEN = 68 (smc_clc.c).
const ACCEPT = hex(
  'e2d4c3d9 02 0044 18', // eyecatcher, type Accept, length 68, version 1 + first contact (bit 3)
  '0102030405060708', // peer id
  'fe800000000000000211223344556677', // GID
  'aabbccddeeff', // MAC
  '000123', // QPN
  '11223344', // RMB rkey
  '01', // RMBE index
  'a1b2c3d4', // RMBE alert token
  '24', // RMBE size 2 (64 KiB) | QP MTU 4 (2048)
  '00', // reserved
  '0000000012345000', // RMB virtual address
  '00', // reserved
  'abcdef', // initial PSN
  'e2d4c3d9', // trailer
);

const ACCEPT_MODEL: ClcAcceptConfirm = {
  kind: 'accept',
  version: 1,
  firstContact: true,
  peerId: hex('0102030405060708'),
  gid: hex('fe800000000000000211223344556677'),
  mac: hex('aabbccddeeff'),
  qpn: 0x123,
  rmbRkey: 0x11223344,
  rmbeIndex: 1,
  rmbeAlertToken: 0xa1b2c3d4,
  rmbeSize: 2,
  qpMtu: 4,
  rmbVirtualAddress: 0x12345000n,
  initialPsn: 0xabcdef,
};

describe('CLC Accept / Confirm (v1, 68 bytes)', () => {
  it('decodes and encodes the hand-written Accept vector', () => {
    expect(ACCEPT).toHaveLength(68);
    expect(decodeClcAcceptConfirm(ACCEPT)).toEqual(ACCEPT_MODEL);
    expect(encodeClcAcceptConfirm(ACCEPT_MODEL)).toEqual(ACCEPT);
  });

  it('decodes a Confirm (type 3) without the first-contact flag', () => {
    const confirm = Buffer.from(ACCEPT);
    confirm[4] = 0x03;
    confirm[7] = 0x10;
    expect(decodeClcAcceptConfirm(confirm)).toEqual({
      ...ACCEPT_MODEL,
      kind: 'confirm',
      firstContact: false,
    });
    expect(encodeClcAcceptConfirm({ ...ACCEPT_MODEL, kind: 'confirm', firstContact: false })).toEqual(
      confirm,
    );
  });

  it('ignores reserved bytes on decode and zeroes them on encode', () => {
    const dirty = Buffer.from(ACCEPT);
    dirty[51] = 0xff;
    dirty[60] = 0xff;
    expect(decodeClcAcceptConfirm(dirty)).toEqual(ACCEPT_MODEL);
    expect(encodeClcAcceptConfirm(decodeClcAcceptConfirm(dirty))).toEqual(ACCEPT);
  });

  it('rejects malformed input by field', () => {
    const bad = (at: number, value: number): Buffer => {
      const b = Buffer.from(ACCEPT);
      b[at] = value;
      return b;
    };
    expectDecodeError(() => decodeClcAcceptConfirm(bad(0, 0)), 'eyecatcher', 'eyecatcher');
    expectDecodeError(() => decodeClcAcceptConfirm(bad(67, 0)), 'eyecatcher', 'trailer');
    expectDecodeError(() => decodeClcAcceptConfirm(bad(4, 9)), 'type', 'type');
    expectDecodeError(() => decodeClcAcceptConfirm(bad(4, 1)), 'type', 'type');
    expectDecodeError(() => decodeClcAcceptConfirm(bad(7, 0x38)), 'version', 'version');
    expectDecodeError(() => decodeClcAcceptConfirm(bad(7, 0x28)), 'version', 'version');
    expectDecodeError(() => decodeClcAcceptConfirm(bad(7, 0x19)), 'range', 'typeV1');
    expectDecodeError(() => decodeClcAcceptConfirm(ACCEPT.subarray(0, 67)), 'truncated', 'length');
    expectDecodeError(() => decodeClcAcceptConfirm(ACCEPT.subarray(0, 5)), 'truncated', 'header');
    expectDecodeError(() => decodeClcAcceptConfirm(Buffer.concat([ACCEPT, hex('00')])), 'length', 'length');
    const short = Buffer.concat([ACCEPT.subarray(0, 60), hex('e2d4c3d9')]);
    short.writeUInt16BE(64, 5);
    expectDecodeError(() => decodeClcAcceptConfirm(short), 'length', 'length');
  });

  it('refuses to encode out-of-range fields', () => {
    expect(() => encodeClcAcceptConfirm({ ...ACCEPT_MODEL, qpn: 0x1000000 })).toThrow(/qpn/);
    expect(() => encodeClcAcceptConfirm({ ...ACCEPT_MODEL, rmbeSize: 16 })).toThrow(/rmbeSize/);
    expect(() => encodeClcAcceptConfirm({ ...ACCEPT_MODEL, gid: hex('00') })).toThrow(/gid/);
  });
});
