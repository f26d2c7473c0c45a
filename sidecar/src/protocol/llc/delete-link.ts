import type { ByteReader, ByteWriter } from '../bytes.js';
import { LLC_FLAG_DEL_LINK_ALL, LLC_FLAG_DEL_LINK_ORDERLY, LLC_TYPE } from './constants.js';
import { newLlcMessage, readLlcFrame } from './header.js';

/*
 * DELETE LINK, type 0x04 (RFC 7609 Appendix A "DELETE LINK LLC message";
 * smc_llc.c struct smc_llc_msg_del_link, __packed):
 *   3 flags (0x40 all links, 0x20 orderly), 4 link number, 5 reason u32 (SMC_LLC_DEL_*),
 *   9 reserved (35)
 */
export interface LlcDeleteLink {
  kind: 'delete-link';
  response: boolean;
  all: boolean;
  orderly: boolean;
  linkNum: number;
  reason: number;
}

export function decodeLlcDeleteLink(bytes: Uint8Array): LlcDeleteLink {
  const { reader: r, response, flags } = readLlcFrame(bytes, LLC_TYPE.deleteLink);
  return readDeleteLinkBody(r, response, flags);
}

/** Fields after the header; shared with the SMC-Rv2 DELETE LINK (0x24). */
export function readDeleteLinkBody(r: ByteReader, response: boolean, flags: number): LlcDeleteLink {
  return {
    kind: 'delete-link',
    response,
    all: (flags & LLC_FLAG_DEL_LINK_ALL) !== 0,
    orderly: (flags & LLC_FLAG_DEL_LINK_ORDERLY) !== 0,
    linkNum: r.u8(4, 'linkNum'),
    reason: r.u32(5, 'reason'),
  };
}

export function encodeLlcDeleteLink(m: LlcDeleteLink): Buffer {
  const w = newLlcMessage(LLC_TYPE.deleteLink, m.response, deleteLinkFlags(m));
  writeDeleteLinkBody(w, m);
  return w.bytes;
}

export function deleteLinkFlags(m: Pick<LlcDeleteLink, 'all' | 'orderly'>): number {
  return (m.all ? LLC_FLAG_DEL_LINK_ALL : 0) | (m.orderly ? LLC_FLAG_DEL_LINK_ORDERLY : 0);
}

export function writeDeleteLinkBody(w: ByteWriter, m: Pick<LlcDeleteLink, 'linkNum' | 'reason'>): void {
  w.u8(4, m.linkNum, 'linkNum');
  w.u32(5, m.reason, 'reason');
}
