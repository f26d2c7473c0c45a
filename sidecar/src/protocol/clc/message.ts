import { ProtocolEncodeError } from '../errors.js';
import { type ClcAcceptConfirm, decodeClcAcceptConfirm, encodeClcAcceptConfirm } from './accept-confirm.js';
import { CLC_TYPE } from './constants.js';
import { type ClcDecline, decodeClcDecline, encodeClcDecline } from './decline.js';
import { decodeClcHeader } from './header.js';
import { type ClcProposal, decodeClcProposal, encodeClcProposal } from './proposal.js';

export type ClcMessage = ClcProposal | ClcAcceptConfirm | ClcDecline;

/** Decodes one complete CLC message of any type. */
export function decodeClcMessage(bytes: Uint8Array): ClcMessage {
  const header = decodeClcHeader(bytes);
  switch (header.type) {
    case CLC_TYPE.proposal:
      return decodeClcProposal(bytes);
    case CLC_TYPE.accept:
    case CLC_TYPE.confirm:
      return decodeClcAcceptConfirm(bytes);
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
      return encodeClcAcceptConfirm(m);
    case 'decline':
      return encodeClcDecline(m);
    default:
      throw new ProtocolEncodeError('kind', 'unknown CLC message kind');
  }
}
