/**
 * LLC constants (RFC 7609 Appendix A "LLC messages"; kernel net/smc/smc_llc.h
 * enum smc_llc_msg_type and the SMC_LLC_FLAG_* / SMC_LLC_DEL_* macros in
 * net/smc/smc_llc.c and smc_llc.h).
 */
export const LLC_MESSAGE_LENGTH = 44;

export const LLC_TYPE = {
  confirmLink: 0x01,
  addLink: 0x02,
  addLinkCont: 0x03,
  deleteLink: 0x04,
  confirmRkey: 0x06,
  testLink: 0x07,
  confirmRkeyCont: 0x08,
  deleteRkey: 0x09,
} as const;
export type LlcTypeCode = (typeof LLC_TYPE)[keyof typeof LLC_TYPE];

/** Byte 3 flags. */
export const LLC_FLAG_RESP = 0x80;
/** Confirm Link: RMBEs carry no eyecatcher (both low bits, SMC_LLC_FLAG_NO_RMBE_EYEC). */
export const LLC_FLAG_NO_RMBE_EYEC = 0x03;
/** Add Link response: the request is rejected, reason in byte 2 low nibble. */
export const LLC_FLAG_ADD_LNK_REJ = 0x40;
export const LLC_REJ_RSN_NO_ALT_PATH = 1;
export const LLC_FLAG_DEL_LINK_ALL = 0x40;
export const LLC_FLAG_DEL_LINK_ORDERLY = 0x20;
export const LLC_FLAG_RKEY_NEG = 0x20;
export const LLC_FLAG_RKEY_RETRY = 0x10;

/** SMC_LLC_DEL_* Delete Link reason codes. */
export const LLC_DELETE_REASON = {
  LOST_PATH: 0x00010000,
  OP_INIT_TERM: 0x00020000,
  PROG_INIT_TERM: 0x00030000,
  PROT_VIOL: 0x00040000,
  NO_ASYM_NEEDED: 0x00050000,
  NOLNK: 0x00100000,
  NOLGR: 0x00200000,
} as const;

/** SMC_LGR_ID_SIZE: link group id / link user id. */
export const SMC_LGR_ID_SIZE = 4;
/** SMC_LLC_RKEYS_PER_MSG and SMC_LLC_RKEYS_PER_CONT_MSG. */
export const LLC_RKEYS_PER_MSG = 3;
export const LLC_RKEYS_PER_CONT_MSG = 2;
/** SMC_LLC_DEL_RKEY_MAX */
export const LLC_DEL_RKEY_MAX = 8;
