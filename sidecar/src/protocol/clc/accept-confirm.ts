import { type ByteReader, ByteWriter, checkBits } from '../bytes.js';
import { ProtocolDecodeError } from '../errors.js';
import {
  CLC_FLAG_FIRST_CONTACT,
  CLC_TYPE,
  ETH_ALEN,
  SMC_GID_SIZE,
  SMC_SYSTEMID_LEN,
  SMC_TYPE,
  SMCR_CLC_ACCEPT_CONFIRM_LEN,
  SMCR_EYECATCHER,
} from './constants.js';
import { decodeClcFrame, requireSmcrEyecatcher, writeClcFrame } from './header.js';

/*
 * SMC-R CLC Accept and Confirm, version 1 (RFC 7609 Appendix A "SMC Accept CLC
 * Message Format" / "SMC Confirm CLC Message Format"; net/smc/smc_clc.h struct
 * smc_clc_msg_accept_confirm with struct smcr_clc_msg_accept_confirm, 68 bytes):
 *
 *   0  header (8); byte 7 bit 3 = first contact
 *   8  peer id (8), 16 GID (16), 32 MAC (6)
 *  38  QP number u24
 *  41  RMB rkey u32
 *  45  RMBE index u8
 *  46  RMBE alert token u32
 *  50  RMBE size (high nibble, 2^(n+14) bytes) | QP MTU (low nibble, enum ib_mtu)
 *  51  reserved
 *  52  RMB virtual address u64
 *  60  reserved
 *  61  initial PSN u24
 *  64  trailer (4)
 */

export interface ClcAcceptConfirm {
  kind: 'accept' | 'confirm';
  version: 1;
  /** Sender starts a new link group (server on Accept) or acknowledges one (client on Confirm). */
  firstContact: boolean;
  peerId: Buffer;
  gid: Buffer;
  mac: Buffer;
  qpn: number;
  rmbRkey: number;
  rmbeIndex: number;
  rmbeAlertToken: number;
  /** Compressed RMBE size n: the buffer is 2^(n+14) bytes. */
  rmbeSize: number;
  /** enum ib_mtu: 1=256 .. 5=4096. */
  qpMtu: number;
  rmbVirtualAddress: bigint;
  initialPsn: number;
}

export function decodeClcAcceptConfirm(bytes: Uint8Array): ClcAcceptConfirm {
  const { header, reader: r } = decodeClcFrame(bytes, false);
  if (header.type !== CLC_TYPE.accept && header.type !== CLC_TYPE.confirm) {
    throw new ProtocolDecodeError('type', 'type', `expected Accept (2) or Confirm (3), got ${header.type}`);
  }
  requireSmcrEyecatcher(header);
  if (header.version !== 1) {
    // Version 2 has its own layout: decodeClcAcceptConfirmV2 (accept-confirm-v2.ts) reads it.
    throw new ProtocolDecodeError(
      'version',
      'version',
      `SMC-R Accept/Confirm version ${header.version} unsupported`,
    );
  }
  if (header.typeV1 !== SMC_TYPE.R) {
    throw new ProtocolDecodeError('range', 'typeV1', `expected SMC-R (0), got ${header.typeV1}`);
  }
  if (header.length !== SMCR_CLC_ACCEPT_CONFIRM_LEN) {
    throw new ProtocolDecodeError(
      'length',
      'length',
      `v1 SMC-R Accept/Confirm is 68 bytes, got ${header.length}`,
    );
  }
  if (!r.equals(64, SMCR_EYECATCHER)) {
    throw new ProtocolDecodeError('eyecatcher', 'trailer', 'trailer is not "SMCR" (EBCDIC)');
  }
  return {
    kind: header.type === CLC_TYPE.accept ? 'accept' : 'confirm',
    version: 1,
    firstContact: (r.u8(7, 'flags') & CLC_FLAG_FIRST_CONTACT) !== 0,
    ...readSmcrAcceptConfirmR0(r),
  };
}

/** The SMC-R fields of struct smcr_clc_msg_accept_confirm ("r0"), bytes 8..63, shared by v1 and v2. */
export type SmcrAcceptConfirmR0 = Omit<ClcAcceptConfirm, 'kind' | 'version' | 'firstContact'>;

export function readSmcrAcceptConfirmR0(r: ByteReader): SmcrAcceptConfirmR0 {
  const sizeMtu = r.u8(50, 'rmbeSize');
  return {
    peerId: r.copy(8, SMC_SYSTEMID_LEN, 'peerId'),
    gid: r.copy(16, SMC_GID_SIZE, 'gid'),
    mac: r.copy(32, ETH_ALEN, 'mac'),
    qpn: r.u24(38, 'qpn'),
    rmbRkey: r.u32(41, 'rmbRkey'),
    rmbeIndex: r.u8(45, 'rmbeIndex'),
    rmbeAlertToken: r.u32(46, 'rmbeAlertToken'),
    rmbeSize: sizeMtu >> 4,
    qpMtu: sizeMtu & 0x0f,
    rmbVirtualAddress: r.u64(52, 'rmbVirtualAddress'),
    initialPsn: r.u24(61, 'initialPsn'),
  };
}

export function writeSmcrAcceptConfirmR0(w: ByteWriter, m: SmcrAcceptConfirmR0): void {
  w.fixed(8, m.peerId, SMC_SYSTEMID_LEN, 'peerId');
  w.fixed(16, m.gid, SMC_GID_SIZE, 'gid');
  w.fixed(32, m.mac, ETH_ALEN, 'mac');
  w.u24(38, m.qpn, 'qpn');
  w.u32(41, m.rmbRkey, 'rmbRkey');
  w.u8(45, m.rmbeIndex, 'rmbeIndex');
  w.u32(46, m.rmbeAlertToken, 'rmbeAlertToken');
  w.u8(50, (checkBits('rmbeSize', m.rmbeSize, 4) << 4) | checkBits('qpMtu', m.qpMtu, 4), 'rmbeSize');
  w.u64(52, m.rmbVirtualAddress, 'rmbVirtualAddress');
  w.u24(61, m.initialPsn, 'initialPsn');
}

export function encodeClcAcceptConfirm(m: ClcAcceptConfirm): Buffer {
  const w = new ByteWriter(SMCR_CLC_ACCEPT_CONFIRM_LEN);
  writeClcFrame(
    w.bytes,
    m.kind === 'accept' ? CLC_TYPE.accept : CLC_TYPE.confirm,
    1,
    m.firstContact ? CLC_FLAG_FIRST_CONTACT >> 2 : 0,
    SMC_TYPE.R,
  );
  writeSmcrAcceptConfirmR0(w, m);
  return w.bytes;
}
