import { CLC_TYPE, SMCD_EYECATCHER, SMCR_EYECATCHER } from './constants.js';

export type FirstMessageVerdict = 'clc' | 'not-clc' | 'undecided';

/** Bytes that decide a verdict: the eyecatcher and the type byte. */
export const FIRST_MESSAGE_SNIFF_LENGTH = 5;

/**
 * Whether the first bytes a peer sent are the CLC message it owes us: an eyecatcher (SMC-R or
 * SMC-D) followed by one of `types`. A peer that put the SMC TCP option on its SYN or SYN-ACK
 * without speaking SMC (a middlebox echoing options, a broken stack) sends anything else: a
 * banner, an error page, an application request, our own Proposal echoed back. 'undecided' while
 * the bytes so far are a prefix of what is expected.
 */
export function firstMessageVerdict(first: Uint8Array, types: readonly number[]): FirstMessageVerdict {
  const n = Math.min(first.byteLength, FIRST_MESSAGE_SNIFF_LENGTH);
  const matches = (eyecatcher: Readonly<Uint8Array>): boolean => {
    for (let i = 0; i < Math.min(n, eyecatcher.byteLength); i++) if (first[i] !== eyecatcher[i]) return false;
    return true;
  };
  if (!matches(SMCR_EYECATCHER) && !matches(SMCD_EYECATCHER)) return 'not-clc';
  if (n < FIRST_MESSAGE_SNIFF_LENGTH) return 'undecided';
  return types.includes(first[4] ?? -1) ? 'clc' : 'not-clc';
}

/** A server answers our Proposal with an Accept or a Decline. */
export function serverReplyVerdict(first: Uint8Array): FirstMessageVerdict {
  return firstMessageVerdict(first, [CLC_TYPE.accept, CLC_TYPE.decline]);
}

/** A client that announced SMC in its SYN opens with a Proposal. */
export function clientHelloVerdict(first: Uint8Array): FirstMessageVerdict {
  return firstMessageVerdict(first, [CLC_TYPE.proposal]);
}
