import { ProtocolDecodeError, ProtocolEncodeError } from '../errors.js';
import { type ClcAcceptConfirm, decodeClcAcceptConfirm, encodeClcAcceptConfirm } from './accept-confirm.js';
import {
  type ClcAcceptConfirmV2,
  decodeClcAcceptConfirmV2,
  encodeClcAcceptConfirmV2,
} from './accept-confirm-v2.js';
import { CLC_TYPE, type SmcVersion } from './constants.js';
import { type ClcDecline, decodeClcDecline, encodeClcDecline } from './decline.js';
import { decodeClcHeader } from './header.js';
import { type ClcProposal, decodeClcProposal, encodeClcProposal } from './proposal.js';

export type ClcMessage = ClcProposal | ClcAcceptConfirm | ClcAcceptConfirmV2 | ClcDecline;

export interface ClcDecodeOptions {
  /**
   * Highest Accept/Confirm version the caller can take: a newer one is a
   * `version` error (a v1-only peer answers it with SMC_CLC_DECL_VERSMISMAT).
   * Default 2.
   */
  maxAcceptConfirmVersion?: SmcVersion;
}

/** Decodes one complete CLC message of any type and version. */
export function decodeClcMessage(bytes: Uint8Array, options: ClcDecodeOptions = {}): ClcMessage {
  const header = decodeClcHeader(bytes);
  switch (header.type) {
    case CLC_TYPE.proposal:
      return decodeClcProposal(bytes);
    case CLC_TYPE.accept:
    case CLC_TYPE.confirm: {
      const max = options.maxAcceptConfirmVersion ?? 2;
      if (header.version > max) {
        throw new ProtocolDecodeError(
          'version',
          'version',
          `SMC-R Accept/Confirm version ${header.version} unsupported`,
        );
      }
      return header.version === 2 ? decodeClcAcceptConfirmV2(bytes) : decodeClcAcceptConfirm(bytes);
    }
    case CLC_TYPE.decline:
      return decodeClcDecline(bytes);
  }
}

export function encodeClcMessage(m: ClcMessage): Buffer {
  switch (m.kind) {
    case 'proposal':
      return encodeClcProposal(m);
    case 'accept':
    case 'confirm':
      return m.version === 2 ? encodeClcAcceptConfirmV2(m) : encodeClcAcceptConfirm(m);
    case 'decline':
      return encodeClcDecline(m);
    default:
      throw new ProtocolEncodeError('kind', 'unknown CLC message kind');
  }
}
