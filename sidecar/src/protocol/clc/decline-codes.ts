/**
 * CLC Decline peer diagnosis codes (SMC_CLC_DECL_* in net/smc/smc_clc.h).
 * The high byte is the class (01 resources, 02 timeout, 03 configuration,
 * 04 synchronisation, 05 peer decline, 09 internal); RFC 7609 leaves the
 * values to implementations, so the Linux kernel's are the reference.
 */
export const SMC_CLC_DECL = {
  MEM: 0x01010000,
  /** Generic timeout class; named SMC_CLC_DECL_TIMEOUT in kernels up to 4.19. Used for CLC-level waits. */
  TIMEOUT: 0x02000000,
  TIMEOUT_CL: 0x02010000,
  TIMEOUT_AL: 0x02020000,
  CNFERR: 0x03000000,
  PEERNOSMC: 0x03010000,
  IPSEC: 0x03020000,
  NOSMCDEV: 0x03030000,
  NOSMCDDEV: 0x03030001,
  NOSMCRDEV: 0x03030002,
  NOISM2SUPP: 0x03030003,
  NOV2EXT: 0x03030004,
  NOV2DEXT: 0x03030005,
  NOSEID: 0x03030006,
  NOSMCD2DEV: 0x03030007,
  NOUEID: 0x03030008,
  RELEASEERR: 0x03030009,
  MAXCONNERR: 0x0303000a,
  MAXLINKERR: 0x0303000b,
  MODEUNSUPP: 0x03040000,
  RMBE_EC: 0x03050000,
  OPTUNSUPP: 0x03060000,
  DIFFPREFIX: 0x03070000,
  GETVLANERR: 0x03080000,
  ISMVLANERR: 0x03090000,
  NOACTLINK: 0x030a0000,
  NOSRVLINK: 0x030b0000,
  VERSMISMAT: 0x030c0000,
  MAX_DMB: 0x030d0000,
  NOROUTE: 0x030e0000,
  NOINDIRECT: 0x030f0000,
  SYNCERR: 0x04000000,
  PEERDECL: 0x05000000,
  INTERR: 0x09990000,
  ERR_RTOK: 0x09990001,
  ERR_RDYLNK: 0x09990002,
  ERR_REGBUF: 0x09990003,
} as const;

export type SmcClcDeclName = keyof typeof SMC_CLC_DECL;

export interface DeclineCodeInfo {
  code: number;
  /** Kernel macro name without the SMC_CLC_DECL_ prefix. */
  name: SmcClcDeclName;
  description: string;
}

const DESCRIPTIONS: Record<SmcClcDeclName, string> = {
  MEM: 'insufficient memory resources',
  TIMEOUT: 'timeout',
  TIMEOUT_CL: 'timeout waiting for QP confirm link',
  TIMEOUT_AL: 'timeout waiting for QP add link',
  CNFERR: 'configuration error',
  PEERNOSMC: 'peer did not indicate SMC',
  IPSEC: 'IPsec usage',
  NOSMCDEV: 'no SMC device found (R or D)',
  NOSMCDDEV: 'no SMC-D device found',
  NOSMCRDEV: 'no SMC-R device found',
  NOISM2SUPP: 'hardware has no ISMv2 support',
  NOV2EXT: 'peer sent no CLC v2 extension',
  NOV2DEXT: 'peer sent no CLC SMC-Dv2 extension',
  NOSEID: 'peer sent no SEID',
  NOSMCD2DEV: 'no SMC-Dv2 device found',
  NOUEID: 'peer sent no UEID',
  RELEASEERR: 'release version negotiation failed',
  MAXCONNERR: 'max connections negotiation failed',
  MAXLINKERR: 'max links negotiation failed',
  MODEUNSUPP: 'SMC modes do not match (R or D)',
  RMBE_EC: 'peer has eyecatcher in RMBE',
  OPTUNSUPP: 'fastopen sockopt not supported',
  DIFFPREFIX: 'IP prefix / subnet mismatch',
  GETVLANERR: 'error getting VLAN id of IP device',
  ISMVLANERR: 'error registering VLAN id on ISM device',
  NOACTLINK: 'no active SMC-R link in link group',
  NOSRVLINK: 'SMC-R link from server not found',
  VERSMISMAT: 'SMC version mismatch',
  MAX_DMB: 'SMC-D DMB limit exceeded',
  NOROUTE: 'SMC-Rv2 connection: no route to peer',
  NOINDIRECT: 'SMC-Rv2 connection: indirect mismatch',
  SYNCERR: 'synchronization error',
  PEERDECL: 'peer declined during handshake',
  INTERR: 'internal error',
  ERR_RTOK: 'internal error: rtoken handling failed',
  ERR_RDYLNK: 'internal error: IB ready link failed',
  ERR_REGBUF: 'internal error: registering RDMA buffers failed',
};

/** Every known code with its name and description, in numeric order. */
export const DECLINE_CODES: readonly DeclineCodeInfo[] = (Object.keys(SMC_CLC_DECL) as SmcClcDeclName[])
  .map((name) => ({ code: SMC_CLC_DECL[name], name, description: DESCRIPTIONS[name] }))
  .sort((a, b) => a.code - b.code);

const BY_CODE: ReadonlyMap<number, DeclineCodeInfo> = new Map(DECLINE_CODES.map((c) => [c.code, c]));

const CLASS_DESCRIPTIONS: Readonly<Record<number, string>> = {
  0x01: 'resource shortage',
  0x02: 'timeout',
  0x03: 'configuration error',
  0x04: 'synchronization error',
  0x05: 'peer declined',
  0x09: 'internal error',
};

/** Looks a code up exactly; unknown codes return null. */
export function declineCodeInfo(code: number): DeclineCodeInfo | null {
  return BY_CODE.get(code) ?? null;
}

/** Human description of any code, falling back to its class for codes we do not know. */
export function describeDeclineCode(code: number): string {
  const info = BY_CODE.get(code);
  if (info !== undefined) return `${info.description} (SMC_CLC_DECL_${info.name})`;
  const hex = `0x${(code >>> 0).toString(16).padStart(8, '0')}`;
  const cls = CLASS_DESCRIPTIONS[code >>> 24];
  return cls === undefined ? `unknown decline code ${hex}` : `${cls} (unlisted code ${hex})`;
}
