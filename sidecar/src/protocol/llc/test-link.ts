import type { ByteReader } from '../bytes.js';
import { LLC_TYPE } from './constants.js';
import { newLlcMessage, readLlcFrame } from './header.js';

/*
 * TEST LINK, type 0x07 (RFC 7609 Appendix A "TEST LINK LLC message";
 * smc_llc.c struct smc_llc_msg_test_link): 4 user data (16), echoed in the
 * response; 20 reserved (24).
 */
export interface LlcTestLink {
  kind: 'test-link';
  response: boolean;
  userData: Buffer;
}

export function decodeLlcTestLink(bytes: Uint8Array): LlcTestLink {
  const { reader: r, response } = readLlcFrame(bytes, LLC_TYPE.testLink);
  return readTestLinkBody(r, response);
}

/** Fields after the header; shared with the SMC-Rv2 TEST LINK (0x27). */
export function readTestLinkBody(r: ByteReader, response: boolean): LlcTestLink {
  return { kind: 'test-link', response, userData: r.copy(4, 16, 'userData') };
}

export function encodeLlcTestLink(m: LlcTestLink): Buffer {
  const w = newLlcMessage(LLC_TYPE.testLink, m.response);
  w.fixed(4, m.userData, 16, 'userData');
  return w.bytes;
}
