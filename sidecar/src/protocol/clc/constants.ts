/**
 * CLC constants (RFC 7609 Appendix A "CLC messages"; kernel net/smc/smc_clc.h
 * and net/smc/smc_clc.c).
 */

/** "SMCR" in EBCDIC: header and trailer eyecatcher of SMC-R CLC messages. */
export const SMCR_EYECATCHER: Readonly<Uint8Array> = Uint8Array.of(0xe2, 0xd4, 0xc3, 0xd9);
/** "SMCD" in EBCDIC: used by SMC-D peers; we only tolerate it on Decline. */
export const SMCD_EYECATCHER: Readonly<Uint8Array> = Uint8Array.of(0xe2, 0xd4, 0xc3, 0xc4);

export const CLC_TYPE = {
  proposal: 0x01,
  accept: 0x02,
  confirm: 0x03,
  decline: 0x04,
} as const;
export type ClcTypeName = keyof typeof CLC_TYPE;
export type ClcTypeCode = (typeof CLC_TYPE)[ClcTypeName];

export const SMC_VERSION_1 = 1;
export const SMC_VERSION_2 = 2;
export type SmcVersion = 1 | 2;

/** smc_type_v1 / smc_type_v2 2-bit fields of header byte 7 (SMC_TYPE_*). */
export const SMC_TYPE = { R: 0, D: 1, N: 2, B: 3 } as const;
export type SmcType = (typeof SMC_TYPE)[keyof typeof SMC_TYPE];

export function smcrIndicated(t: SmcType): boolean {
  return t === SMC_TYPE.R || t === SMC_TYPE.B;
}

export function smcdIndicated(t: SmcType): boolean {
  return t === SMC_TYPE.D || t === SMC_TYPE.B;
}

/** Bit 3 of header byte 7: first contact on Accept/Confirm, out-of-sync on Decline (SMC_FIRST_CONTACT_MASK within typev2). */
export const CLC_FLAG_FIRST_CONTACT = 0x08;
/** SMC_FIRST_CONTACT_MASK (smc_clc.h): the same bit, seen inside the 2-bit typev2 field. */
export const SMC_FIRST_CONTACT_MASK = 0b10;

export const CLC_HEADER_LENGTH = 8;
export const CLC_TRAILER_LENGTH = 4;
/** smc_clc_msg_local: peer id (8), GID (16), MAC (6). */
export const SMC_SYSTEMID_LEN = 8;
export const SMC_GID_SIZE = 16;
export const ETH_ALEN = 6;
/** SMCR_CLC_ACCEPT_CONFIRM_LEN in smc_clc.c. */
export const SMCR_CLC_ACCEPT_CONFIRM_LEN = 68;
/** sizeof(struct smc_clc_msg_decline) and sizeof(struct smc_clc_msg_decline_v2). */
export const SMC_CLC_DECLINE_LEN = 28;
export const SMC_CLC_DECLINE_V2_LEN = 44;
/** SMC_MAX_EID_LEN in include/uapi/linux/smc.h. */
export const SMC_MAX_EID_LEN = 32;
/** SMC_MAX_HOSTNAME_LEN in include/uapi/linux/smc.h: the first-contact extension's hostname field. */
export const SMC_MAX_HOSTNAME_LEN = 32;
/** SMC_CLC_MAX_UEID in smc_clc.h (and SMC_MAX_UEID in uapi smc.h): user EIDs a Proposal carries at most. */
export const SMC_CLC_MAX_UEID = 8;
/** SMCR_CLC_ACCEPT_CONFIRM_LEN_V2 in smc_clc.c: v1 part, eid (32), reserved (8), trailer. */
export const SMCR_CLC_ACCEPT_CONFIRM_LEN_V2 = 108;
/** sizeof(struct smc_clc_first_contact_ext) and sizeof(struct smc_clc_first_contact_ext_v2x). */
export const SMC_CLC_FCE_LEN = 36;
export const SMC_CLC_FCE_V2X_LEN = 52;
/** offsetof(struct smc_clc_fce_gid_ext, gid): gid_cnt plus three reserved bytes. */
export const SMC_CLC_FCE_GID_EXT_HDR_LEN = 4;

/** SMC_CLC_OS_* (smc_clc.h): the os_type nibble of the first-contact extension and of v2 Declines. */
export const SMC_CLC_OS = { ZOS: 1, LINUX: 2, AIX: 3 } as const;

/** SMC_RELEASE_0 / SMC_RELEASE_1 / SMC_RELEASE (net/smc/smc.h): v2.0, v2.1 and the newest we speak. */
export const SMC_RELEASE_0 = 0;
export const SMC_RELEASE_1 = 1;
export const SMC_RELEASE = SMC_RELEASE_1;

/** SMC-Rv2.1 limits (net/smc/smc_core.h). */
export const SMC_CONN_PER_LGR_MIN = 16;
export const SMC_CONN_PER_LGR_MAX = 255;
export const SMC_CONN_PER_LGR_PREFER = 255;
export const SMC_LINKS_ADD_LNK_MIN = 1;
export const SMC_LINKS_ADD_LNK_MAX = 2;
export const SMC_LINKS_PER_LGR_MAX_PREFER = 2;
/** CLC_WAIT_TIME in smc_clc.h: 6 * HZ. */
export const CLC_WAIT_TIME_MS = 6000;

/** RMBE size is sent compressed: 2^(n+14) bytes (smc_uncompress_bufsize, SMC_BUF_MIN_SIZE 16 KiB). */
export function rmbeSizeFromCompressed(n: number): number {
  return 2 ** (n + 14);
}

/** Smallest compressed value whose RMBE holds `bytes`, capped at the 4-bit maximum. */
export function rmbeSizeToCompressed(bytes: number): number {
  let n = 0;
  while (n < 15 && rmbeSizeFromCompressed(n) < bytes) n++;
  return n;
}

/** IB path MTU enum (enum ib_mtu) carried in the 4-bit qp_mtu fields. */
export const IB_MTU = { 256: 1, 512: 2, 1024: 3, 2048: 4, 4096: 5 } as const;

export function ibMtuToBytes(mtu: number): number | null {
  return mtu >= 1 && mtu <= 5 ? 128 << mtu : null;
}
