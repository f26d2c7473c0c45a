import { ProtocolEncodeError } from '../errors.js';
import { decodeLlcAddLinkCont, encodeLlcAddLinkCont, type LlcAddLinkCont } from './add-link-cont.js';
import { decodeLlcAddLink, encodeLlcAddLink, type LlcAddLink } from './add-link.js';
import { decodeLlcConfirmLink, encodeLlcConfirmLink, type LlcConfirmLink } from './confirm-link.js';
import {
  decodeLlcConfirmRkeyCont,
  encodeLlcConfirmRkeyCont,
  type LlcConfirmRkeyCont,
} from './confirm-rkey-cont.js';
import { decodeLlcConfirmRkey, encodeLlcConfirmRkey, type LlcConfirmRkey } from './confirm-rkey.js';
import { LLC_TYPE } from './constants.js';
import { decodeLlcDeleteLink, encodeLlcDeleteLink, type LlcDeleteLink } from './delete-link.js';
import { decodeLlcDeleteRkey, encodeLlcDeleteRkey, type LlcDeleteRkey } from './delete-rkey.js';
import { readLlcFrame } from './header.js';
import { decodeLlcTestLink, encodeLlcTestLink, type LlcTestLink } from './test-link.js';

export type LlcMessage =
  | LlcConfirmLink
  | LlcAddLink
  | LlcAddLinkCont
  | LlcDeleteLink
  | LlcConfirmRkey
  | LlcConfirmRkeyCont
  | LlcDeleteRkey
  | LlcTestLink;

export function decodeLlcMessage(bytes: Uint8Array): LlcMessage {
  const { type } = readLlcFrame(bytes);
  switch (type) {
    case LLC_TYPE.confirmLink:
      return decodeLlcConfirmLink(bytes);
    case LLC_TYPE.addLink:
      return decodeLlcAddLink(bytes);
    case LLC_TYPE.addLinkCont:
      return decodeLlcAddLinkCont(bytes);
    case LLC_TYPE.deleteLink:
      return decodeLlcDeleteLink(bytes);
    case LLC_TYPE.confirmRkey:
      return decodeLlcConfirmRkey(bytes);
    case LLC_TYPE.testLink:
      return decodeLlcTestLink(bytes);
    case LLC_TYPE.confirmRkeyCont:
      return decodeLlcConfirmRkeyCont(bytes);
    case LLC_TYPE.deleteRkey:
      return decodeLlcDeleteRkey(bytes);
  }
}

export function encodeLlcMessage(m: LlcMessage): Buffer {
  switch (m.kind) {
    case 'confirm-link':
      return encodeLlcConfirmLink(m);
    case 'add-link':
      return encodeLlcAddLink(m);
    case 'add-link-cont':
      return encodeLlcAddLinkCont(m);
    case 'delete-link':
      return encodeLlcDeleteLink(m);
    case 'confirm-rkey':
      return encodeLlcConfirmRkey(m);
    case 'confirm-rkey-cont':
      return encodeLlcConfirmRkeyCont(m);
    case 'delete-rkey':
      return encodeLlcDeleteRkey(m);
    case 'test-link':
      return encodeLlcTestLink(m);
    default:
      throw new ProtocolEncodeError('kind', 'unknown LLC message kind');
  }
}
