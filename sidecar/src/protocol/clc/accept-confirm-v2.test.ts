import { describe, expect, it } from 'vitest';
import { expectDecodeError } from '../testing/expect-decode-error.js';
import { hex } from '../testing/hex.js';
import {
  type ClcAcceptConfirmV2,
  decodeClcAcceptConfirmAny,
  decodeClcAcceptConfirmV2,
  encodeClcAcceptConfirmAny,
  encodeClcAcceptConfirmV2,
} from './accept-confirm-v2.js';
import { decodeClcAcceptConfirm } from './accept-confirm.js';
import { decodeClcMessage } from './message.js';

// Layout: net/smc/smc_clc.h struct smc_clc_msg_accept_confirm (hdr, r0 = struct
// smcr_clc_msg_accept_confirm, r1 = { eid[32], reserved6[8] }), struct
// smc_clc_first_contact_ext / smc_clc_first_contact_ext_v2x, struct
// smc_clc_fce_gid_ext; SMCR_CLC_ACCEPT_CONFIRM_LEN_V2 = 108 and
// smc_clc_send_confirm_accept() / smc_clc_fill_fce() in net/smc/smc_clc.c.
const R0 = [
  '5e5e5e5e5e5e5e5e', // peer id
  '00000000000000000000ffffc0a80114', // RoCEv2 GID (IPv4-mapped 192.168.1.20)
  '020000000002', // MAC
  '000202', // QPN
  '00002222', // RMB rkey
  '01', // RMBE index
  '50000002', // RMBE alert token
  '13', // RMBE size 1 (32 KiB) | QP MTU 3 (1024)
  '00', // reserved
  '00007f0000200000', // RMB virtual address
  '00', // reserved
  '040506', // initial PSN
];
const EID = '534d434b38532d54454e414e542d412020202020202020202020202020202020'; // "SMCK8S-TENANT-A" + blanks
const HOSTNAME = '6e6f64652d622020202020202020202020202020202020202020202020202020'; // "node-b" + blanks

// What a v2.1 Linux server sends with first contact: 108 + 52 = 160 bytes.
const ACCEPT_V2_FIRST = hex(
  'e2d4c3d9 02 00a0 28', // Accept, 160 bytes, version 2 | typev2 first contact (0b10) | typev1 R
  ...R0,
  EID,
  '0000000000000000', // reserved6
  '80', // v2_direct
  '21', // os type 2 (Linux) | release 1
  '0000',
  HOSTNAME,
  'ff 02 0000', // max_conns 255, max_links 2, feature mask
  '00000000', // vendor_exp_options
  '0000000000000000', // reserved4
  'e2d4c3d9',
);

const R0_MODEL = {
  peerId: hex('5e5e5e5e5e5e5e5e'),
  gid: hex('00000000000000000000ffffc0a80114'),
  mac: hex('020000000002'),
  qpn: 0x202,
  rmbRkey: 0x2222,
  rmbeIndex: 1,
  rmbeAlertToken: 0x50000002,
  rmbeSize: 1,
  qpMtu: 3,
  rmbVirtualAddress: 0x7f0000200000n,
  initialPsn: 0x040506,
};

const ACCEPT_MODEL: ClcAcceptConfirmV2 = {
  kind: 'accept',
  version: 2,
  firstContact: true,
  ...R0_MODEL,
  eid: hex(EID),
  firstContactExt: {
    v2Direct: true,
    osType: 2,
    release: 1,
    hostname: hex(HOSTNAME),
    v2x: { maxConns: 255, maxLinks: 2, featureMask: 0, vendorOptions: 0 },
  },
  gidList: null,
};

// The client's first-contact Confirm carries its GID list (smc_fill_gid_list): 108 + 52 + 4 + 2 * 16 = 196.
const CONFIRM_V2_FIRST = hex(
  'e2d4c3d9 03 00c4 28',
  ...R0,
  EID,
  '0000000000000000',
  '80 21 0000',
  HOSTNAME,
  'ff 02 0000 00000000 0000000000000000',
  '02 000000', // gid_cnt 2, reserved
  '00000000000000000000ffffc0a80114',
  '00000000000000000000ffffc0a80214',
  'e2d4c3d9',
);

// A kernel before SMC v2.1 sends the 36-byte extension with release 0: 108 + 36 = 144.
const ACCEPT_V20 = hex(
  'e2d4c3d9 02 0090 28',
  ...R0,
  EID,
  '0000000000000000',
  '00 20 0000', // routed (no v2_direct), Linux, release 0
  HOSTNAME,
  'e2d4c3d9',
);

// Without first contact the message stops after r1: 108 bytes.
const CONFIRM_V2_REUSE = hex('e2d4c3d9 03 006c 20', ...R0, EID, '0000000000000000', 'e2d4c3d9');

describe('CLC Accept / Confirm v2 (SMC-R, 108+ bytes)', () => {
  it('round-trips the v2.1 first-contact Accept vector', () => {
    expect(ACCEPT_V2_FIRST).toHaveLength(160);
    expect(decodeClcAcceptConfirmV2(ACCEPT_V2_FIRST)).toEqual(ACCEPT_MODEL);
    expect(encodeClcAcceptConfirmV2(ACCEPT_MODEL)).toEqual(ACCEPT_V2_FIRST);
  });

  it('round-trips the first-contact Confirm with its GID list', () => {
    const model: ClcAcceptConfirmV2 = {
      ...ACCEPT_MODEL,
      kind: 'confirm',
      gidList: [hex('00000000000000000000ffffc0a80114'), hex('00000000000000000000ffffc0a80214')],
    };
    expect(CONFIRM_V2_FIRST).toHaveLength(196);
    expect(decodeClcAcceptConfirmV2(CONFIRM_V2_FIRST)).toEqual(model);
    expect(encodeClcAcceptConfirmV2(model)).toEqual(CONFIRM_V2_FIRST);
  });

  it('round-trips the 36-byte release-0 extension of kernels before v2.1', () => {
    const model: ClcAcceptConfirmV2 = {
      ...ACCEPT_MODEL,
      firstContactExt: { v2Direct: false, osType: 2, release: 0, hostname: hex(HOSTNAME), v2x: null },
    };
    expect(decodeClcAcceptConfirmV2(ACCEPT_V20)).toEqual(model);
    expect(encodeClcAcceptConfirmV2(model)).toEqual(ACCEPT_V20);
    // and the same Confirm with a GID list: 108 + 36 + 4 + 16 = 164
    const confirm: ClcAcceptConfirmV2 = { ...model, kind: 'confirm', gidList: [hex(R0[1] ?? '')] };
    const bytes = encodeClcAcceptConfirmV2(confirm);
    expect(bytes).toHaveLength(164);
    expect(decodeClcAcceptConfirmV2(bytes)).toEqual(confirm);
  });

  it('reads a release-0 Confirm in the 52-byte form as v2.1 kernels send it', () => {
    // smc_clc_fill_fce() always returns the v2x size for SMC-R; with release 0 max_conns/max_links stay 0.
    const confirm: ClcAcceptConfirmV2 = {
      ...ACCEPT_MODEL,
      kind: 'confirm',
      firstContactExt: {
        v2Direct: true,
        osType: 2,
        release: 0,
        hostname: hex(HOSTNAME),
        v2x: { maxConns: 0, maxLinks: 0, featureMask: 0, vendorOptions: 0 },
      },
      gidList: [hex(R0[1] ?? '')],
    };
    const bytes = encodeClcAcceptConfirmV2(confirm);
    expect(bytes).toHaveLength(108 + 52 + 4 + 16);
    expect(decodeClcAcceptConfirmV2(bytes)).toEqual(confirm);
  });

  it('round-trips a v2 Confirm without first contact', () => {
    const model: ClcAcceptConfirmV2 = {
      ...ACCEPT_MODEL,
      kind: 'confirm',
      firstContact: false,
      firstContactExt: null,
    };
    expect(decodeClcAcceptConfirmV2(CONFIRM_V2_REUSE)).toEqual(model);
    expect(encodeClcAcceptConfirmV2(model)).toEqual(CONFIRM_V2_REUSE);
  });

  it('dispatches on the version: v1 stays 68 bytes, v2 goes to the v2 codec', () => {
    expect(decodeClcAcceptConfirmAny(ACCEPT_V2_FIRST)).toEqual(ACCEPT_MODEL);
    expect(decodeClcMessage(ACCEPT_V2_FIRST)).toEqual(ACCEPT_MODEL);
    expect(encodeClcAcceptConfirmAny(ACCEPT_MODEL)).toEqual(ACCEPT_V2_FIRST);
    const v1 = encodeClcAcceptConfirmAny({ ...R0_MODEL, kind: 'accept', version: 1, firstContact: true });
    expect(v1).toHaveLength(68);
    expect(decodeClcAcceptConfirmAny(v1)).toMatchObject({ version: 1, qpn: 0x202 });
    // the v1 decoder keeps refusing v2, and a caller limited to v1 gets a version error
    expectDecodeError(() => decodeClcAcceptConfirm(ACCEPT_V2_FIRST), 'version', 'version');
    expectDecodeError(
      () => decodeClcMessage(ACCEPT_V2_FIRST, { maxAcceptConfirmVersion: 1 }),
      'version',
      'version',
    );
  });

  it('ignores reserved bytes', () => {
    const dirty = Buffer.from(ACCEPT_V2_FIRST);
    dirty[7] = 0x2c; // the unused low bit of typev2
    dirty[100] = 0xff; // reserved6
    dirty[104] = 0xff; // reserved bits next to v2_direct
    dirty[106] = 0xff; // reserved2
    dirty[150] = 0xff; // reserved4
    expect(decodeClcAcceptConfirmV2(dirty)).toEqual(ACCEPT_MODEL);
  });

  it('rejects malformed input by field', () => {
    const bad = (src: Buffer, at: number, value: number): Buffer => {
      const b = Buffer.from(src);
      b[at] = value;
      return b;
    };
    const d = (b: Uint8Array) => decodeClcAcceptConfirmV2(b);
    expectDecodeError(() => d(bad(ACCEPT_V2_FIRST, 0, 0)), 'eyecatcher', 'eyecatcher');
    expectDecodeError(() => d(bad(ACCEPT_V2_FIRST, 3, 0xc4)), 'eyecatcher', 'eyecatcher'); // SMC-D
    expectDecodeError(() => d(bad(ACCEPT_V2_FIRST, 159, 0)), 'eyecatcher', 'trailer');
    expectDecodeError(() => d(bad(ACCEPT_V2_FIRST, 4, 1)), 'type', 'type');
    expectDecodeError(() => d(bad(ACCEPT_V2_FIRST, 7, 0x18)), 'version', 'version');
    expectDecodeError(() => d(bad(ACCEPT_V2_FIRST, 7, 0x29)), 'range', 'typeV1');
    expectDecodeError(() => d(ACCEPT_V2_FIRST.subarray(0, 150)), 'truncated', 'length');
    expectDecodeError(() => d(Buffer.concat([ACCEPT_V2_FIRST, hex('00')])), 'length', 'length');
    // a v2 header on a 68-byte body
    const short = Buffer.concat([ACCEPT_V2_FIRST.subarray(0, 64), hex('e2d4c3d9')]);
    short.writeUInt16BE(68, 5);
    expectDecodeError(() => d(short), 'length', 'length');
    // first contact flag without room for the extension
    expectDecodeError(() => d(bad(CONFIRM_V2_REUSE, 7, 0x28)), 'truncated', 'firstContactExt');
    // extension bytes without the first contact flag
    expectDecodeError(() => d(bad(ACCEPT_V2_FIRST, 7, 0x20)), 'length', 'length');
    // release 1 claims the v2.1 part the 36-byte message lacks
    expectDecodeError(() => d(bad(ACCEPT_V20, 105, 0x21)), 'length', 'firstContactExt');
    // a GID count the message does not hold, or an Accept with a GID list
    expectDecodeError(() => d(bad(CONFIRM_V2_FIRST, 156, 3)), 'length', 'firstContactExt');
    expectDecodeError(() => d(bad(CONFIRM_V2_FIRST, 4, 2)), 'length', 'firstContactExt');
  });

  it('refuses to encode inconsistent models', () => {
    expect(() => encodeClcAcceptConfirmV2({ ...ACCEPT_MODEL, firstContact: false })).toThrow(
      /firstContactExt/,
    );
    expect(() => encodeClcAcceptConfirmV2({ ...ACCEPT_MODEL, gidList: [] })).toThrow(/gidList/);
    const ext = ACCEPT_MODEL.firstContactExt;
    if (ext === null) throw new Error('fixture');
    expect(() =>
      encodeClcAcceptConfirmV2({ ...ACCEPT_MODEL, firstContactExt: { ...ext, v2x: null } }),
    ).toThrow(/v2x/);
    expect(() =>
      encodeClcAcceptConfirmV2({
        ...ACCEPT_MODEL,
        kind: 'confirm',
        firstContactExt: {
          ...ext,
          release: 0,
          v2x: { maxConns: 2, maxLinks: 0, featureMask: 0, vendorOptions: 0 },
        },
        gidList: [Buffer.alloc(16)],
      }),
    ).toThrow(/maxConns/);
    expect(() => encodeClcAcceptConfirmV2({ ...ACCEPT_MODEL, eid: Buffer.alloc(31) })).toThrow(/eid/);
  });
});
