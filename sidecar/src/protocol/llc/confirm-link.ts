import type { ByteReader, ByteWriter } from '../bytes.js';
import { readLlcFrame, newLlcMessage } from './header.js';
import { LLC_FLAG_NO_RMBE_EYEC, LLC_TYPE, SMC_LGR_ID_SIZE } from './constants.js';

/*
 * CONFIRM LINK, type 0x01 (RFC 7609 Appendix A "CONFIRM LINK LLC message";
 * smc_llc.c struct smc_llc_msg_confirm_link):
 *   4 sender MAC (6), 10 sender GID (16), 26 sender QP number u24, 29 link number,
 *   30 link user id (4), 34 max links, 35 max conns (SMC v2.1), 36 reserved (8)
 */
export interface LlcConfirmLink {
  kind: 'confirm-link';
  response: boolean;
  /** SMC_LLC_FLAG_NO_RMBE_EYEC: the kernel refuses links whose RMBEs would carry eyecatchers. */
  noRmbeEyecatcher: boolean;
  senderMac: Buffer;
  senderGid: Buffer;
  senderQpn: number;
  linkNum: number;
  linkUid: Buffer;
  maxLinks: number;
  maxConns: number;
}

export function decodeLlcConfirmLink(bytes: Uint8Array): LlcConfirmLink {
  const { reader: r, response, flags } = readLlcFrame(bytes, LLC_TYPE.confirmLink);
  return readConfirmLinkBody(r, response, flags);
}

/** Fields after the header; shared with the SMC-Rv2 CONFIRM LINK (0x21), which has the same layout. */
export function readConfirmLinkBody(r: ByteReader, response: boolean, flags: number): LlcConfirmLink {
  return {
    kind: 'confirm-link',
    response,
    noRmbeEyecatcher: (flags & LLC_FLAG_NO_RMBE_EYEC) !== 0,
    senderMac: r.copy(4, 6, 'senderMac'),
    senderGid: r.copy(10, 16, 'senderGid'),
    senderQpn: r.u24(26, 'senderQpn'),
    linkNum: r.u8(29, 'linkNum'),
    linkUid: r.copy(30, SMC_LGR_ID_SIZE, 'linkUid'),
    maxLinks: r.u8(34, 'maxLinks'),
    maxConns: r.u8(35, 'maxConns'),
  };
}

export function encodeLlcConfirmLink(m: LlcConfirmLink): Buffer {
  const w = newLlcMessage(LLC_TYPE.confirmLink, m.response, confirmLinkFlags(m));
  writeConfirmLinkBody(w, m);
  return w.bytes;
}

export function confirmLinkFlags(m: Pick<LlcConfirmLink, 'noRmbeEyecatcher'>): number {
  return m.noRmbeEyecatcher ? LLC_FLAG_NO_RMBE_EYEC : 0;
}

export function writeConfirmLinkBody(w: ByteWriter, m: Omit<LlcConfirmLink, 'kind'>): void {
  w.fixed(4, m.senderMac, 6, 'senderMac');
  w.fixed(10, m.senderGid, 16, 'senderGid');
  w.u24(26, m.senderQpn, 'senderQpn');
  w.u8(29, m.linkNum, 'linkNum');
  w.fixed(30, m.linkUid, SMC_LGR_ID_SIZE, 'linkUid');
  w.u8(34, m.maxLinks, 'maxLinks');
  w.u8(35, m.maxConns, 'maxConns');
}
