import { ProtocolDecodeError } from '../protocol/errors.js';

/*
 * User Enterprise IDs (UEIDs) as the Linux kernel keeps and compares them
 * (net/smc/smc_clc.c: smc_clc_ueid_valid, smc_clc_ueid_add, smc_nl_add_ueid,
 * smc_clc_match_eid; SMC_MAX_EID_LEN in include/uapi/linux/smc.h):
 *
 * - an EID is exactly SMC_MAX_EID_LEN = 32 bytes and is compared with memcmp;
 * - "Valid characters should be (single-byte character set) A-Z, 0-9, '.' and
 *   '-'. Blanks should only be used to pad to the expected size. First
 *   character must be alphanumeric." smc_clc_ueid_valid() trims trailing
 *   isspace() bytes, refuses an all-blank EID, wants the first byte isalnum()
 *   and not islower(), and every other byte up to the last non-blank one
 *   alphanumeric-not-lowercase, '.' or '-'. A NUL is not blank, so padding
 *   must be blanks (0x20);
 * - SMC_NETLINK_ADD_UEID takes SMC_NLA_EID_TABLE_ENTRY with nla_len exactly
 *   SMC_MAX_EID_LEN + 1 = 33: the 32 bytes and a terminating NUL.
 *
 * The kernel's ctype tables also call some Latin-1 bytes and control
 * characters alphanumeric or blank; this module accepts only the ASCII set the
 * comment names and blank padding, a subset of what the kernel takes.
 */

export const UEID_LENGTH = 32;
export const UEID_NETLINK_ATTRIBUTE_LENGTH = UEID_LENGTH + 1;

function isUpperAlnum(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39);
}

function toBytes(eid: Uint8Array | string): Uint8Array {
  return typeof eid === 'string' ? Buffer.from(eid, 'latin1') : eid;
}

/** Why `eid` (32 bytes, or a string that will be padded) is not a valid UEID, or null if it is. */
export function ueidProblem(eid: Uint8Array | string): string | null {
  let bytes = toBytes(eid);
  if (typeof eid === 'string') {
    if (/[^\x20-\x7e]/.test(eid)) return 'only printable ASCII is allowed';
    if (bytes.byteLength > UEID_LENGTH) return `longer than ${UEID_LENGTH} characters`;
    bytes = Buffer.from(eid.padEnd(UEID_LENGTH, ' '), 'latin1');
  } else if (bytes.byteLength !== UEID_LENGTH) {
    return `must be ${UEID_LENGTH} bytes, got ${bytes.byteLength}`;
  }
  let end = UEID_LENGTH - 1;
  while (end >= 0 && bytes[end] === 0x20) end--;
  if (end < 0) return 'is blank';
  if (!isUpperAlnum(bytes[0] ?? 0)) return 'must start with A-Z or 0-9';
  for (let i = 1; i <= end; i++) {
    const c = bytes[i] ?? 0;
    if (!isUpperAlnum(c) && c !== 0x2e && c !== 0x2d) {
      return `character ${i} (0x${c.toString(16).padStart(2, '0')}) is not A-Z, 0-9, '.' or '-' (blanks only pad the end)`;
    }
  }
  return null;
}

export function isValidUeid(eid: Uint8Array | string): boolean {
  return ueidProblem(eid) === null;
}

/** The 32-byte wire and table form of a UEID given as text (blank padded); throws RangeError if invalid. */
export function ueidToBytes(text: string): Buffer {
  const problem = ueidProblem(text);
  if (problem !== null) throw new RangeError(`invalid UEID ${JSON.stringify(text)}: ${problem}`);
  return Buffer.from(text.padEnd(UEID_LENGTH, ' '), 'latin1');
}

/** The 33-byte SMC_NLA_EID_TABLE_ENTRY payload for SMC_NETLINK_ADD_UEID / _REMOVE_UEID: 32 bytes and a NUL. */
export function ueidNetlinkAttribute(text: string): Buffer {
  return Buffer.concat([ueidToBytes(text), Buffer.alloc(1)]);
}

/** Reads a 32-byte UEID (from a Proposal's EID list, an Accept/Confirm, the kernel table) as trimmed text. */
export function decodeUeid(bytes: Uint8Array): string {
  if (bytes.byteLength !== UEID_LENGTH) {
    throw new ProtocolDecodeError(
      bytes.byteLength < UEID_LENGTH ? 'truncated' : 'length',
      'eid',
      `UEIDs are ${UEID_LENGTH} bytes, got ${bytes.byteLength}`,
    );
  }
  const problem = ueidProblem(bytes);
  if (problem !== null) throw new ProtocolDecodeError('range', 'eid', problem);
  return Buffer.from(bytes).toString('latin1').trimEnd();
}

/** Reads the 33-byte netlink form (SMC_NETLINK_DUMP_UEID answers and ADD/REMOVE requests). */
export function decodeUeidNetlinkAttribute(bytes: Uint8Array): string {
  if (bytes.byteLength !== UEID_NETLINK_ATTRIBUTE_LENGTH) {
    throw new ProtocolDecodeError(
      bytes.byteLength < UEID_NETLINK_ATTRIBUTE_LENGTH ? 'truncated' : 'length',
      'eid',
      `the netlink attribute is ${UEID_NETLINK_ATTRIBUTE_LENGTH} bytes, got ${bytes.byteLength}`,
    );
  }
  if (bytes[UEID_LENGTH] !== 0)
    throw new ProtocolDecodeError('range', 'eid', 'byte 32 must be the terminating NUL');
  return decodeUeid(bytes.subarray(0, UEID_LENGTH));
}

/** memcmp over SMC_MAX_EID_LEN bytes, as smc_clc_match_eid compares. */
export function sameEid(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === UEID_LENGTH && b.byteLength === UEID_LENGTH && Buffer.from(a).equals(b);
}
