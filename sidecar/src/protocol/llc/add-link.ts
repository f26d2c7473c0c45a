import { type ByteReader, type ByteWriter, checkBits } from '../bytes.js';
import { LLC_FLAG_ADD_LNK_REJ, LLC_TYPE } from './constants.js';
import { newLlcMessage, readLlcFrame } from './header.js';

/*
 * ADD LINK, type 0x02 (RFC 7609 Appendix A "ADD LINK LLC message";
 * smc_llc.c struct smc_llc_msg_add_link):
 *   2 low nibble: reject reason, 3 flags (0x40 rejected)
 *   4 sender MAC (6), 10 reserved (2), 12 sender GID (16), 28 sender QP number u24,
 *   31 link number, 32 reserved:4 | QP MTU:4, 33 initial PSN u24, 36 reserved (8)
 */
export interface LlcAddLink {
  kind: 'add-link';
  response: boolean;
  rejected: boolean;
  /** SMC_LLC_REJ_RSN_*, meaningful on rejected responses. */
  rejectReason: number;
  senderMac: Buffer;
  senderGid: Buffer;
  senderQpn: number;
  linkNum: number;
  qpMtu: number;
  initialPsn: number;
}

export function decodeLlcAddLink(bytes: Uint8Array): LlcAddLink {
  const { reader: r, response, flags } = readLlcFrame(bytes, LLC_TYPE.addLink);
  return { ...readAddLinkBody(r, response, flags), rejectReason: r.u8(2, 'rejectReason') & 0x0f };
}

/** Fields after the header but the reject reason; shared with the SMC-Rv2 ADD LINK (0x22). */
export function readAddLinkBody(r: ByteReader, response: boolean, flags: number): LlcAddLink {
  return {
    kind: 'add-link',
    response,
    rejected: (flags & LLC_FLAG_ADD_LNK_REJ) !== 0,
    rejectReason: 0,
    senderMac: r.copy(4, 6, 'senderMac'),
    senderGid: r.copy(12, 16, 'senderGid'),
    senderQpn: r.u24(28, 'senderQpn'),
    linkNum: r.u8(31, 'linkNum'),
    qpMtu: r.u8(32, 'qpMtu') & 0x0f,
    initialPsn: r.u24(33, 'initialPsn'),
  };
}

export function encodeLlcAddLink(m: LlcAddLink): Buffer {
  const w = newLlcMessage(LLC_TYPE.addLink, m.response, m.rejected ? LLC_FLAG_ADD_LNK_REJ : 0);
  w.u8(2, checkBits('rejectReason', m.rejectReason, 4), 'rejectReason');
  writeAddLinkBody(w, m);
  return w.bytes;
}

export function writeAddLinkBody(w: ByteWriter, m: Omit<LlcAddLink, 'kind' | 'rejectReason'>): void {
  w.fixed(4, m.senderMac, 6, 'senderMac');
  w.fixed(12, m.senderGid, 16, 'senderGid');
  w.u24(28, m.senderQpn, 'senderQpn');
  w.u8(31, m.linkNum, 'linkNum');
  w.u8(32, checkBits('qpMtu', m.qpMtu, 4), 'qpMtu');
  w.u24(33, m.initialPsn, 'initialPsn');
}
