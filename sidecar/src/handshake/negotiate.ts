import type { ClcFirstContactExt } from '../protocol/clc/accept-confirm-v2.js';
import {
  SMC_CLC_MAX_UEID,
  SMC_CONN_PER_LGR_MAX,
  SMC_CONN_PER_LGR_MIN,
  SMC_CONN_PER_LGR_PREFER,
  SMC_LINKS_ADD_LNK_MAX,
  SMC_LINKS_ADD_LNK_MIN,
  SMC_LINKS_PER_LGR_MAX_PREFER,
  SMC_MAX_EID_LEN,
  SMC_MAX_HOSTNAME_LEN,
  SMC_RELEASE,
  SMC_RELEASE_1,
  smcrIndicated,
} from '../protocol/clc/constants.js';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import type { ClcProposal, ClcV2Extension } from '../protocol/clc/proposal.js';

/*
 * Pure SMC-R version, EID and SMC v2.1 limit negotiation, as the Linux kernel
 * does it (net/smc/af_smc.c smc_listen_v2_check, smc_find_rdma_v2_device_serv,
 * smc_connect_check_aclc, smc_connect_rdma_v2_prepare; net/smc/smc_clc.c
 * smc_clc_match_eid, smc_clc_srv_v2x_features_validate,
 * smc_clc_clnt_v2x_features_validate, smc_clc_v2x_features_confirm_check).
 */

/** The release and link-group limits both sides agreed on. */
export interface V2xLimits {
  release: number;
  maxConns: number;
  maxLinks: number;
}

export type Negotiated<T> = { ok: true; value: T } | { ok: false; code: number; detail: string };

function fail(code: number, detail: string): { ok: false; code: number; detail: string } {
  return { ok: false, code, detail };
}

/** Limits of a link group without v2.1 negotiation (SMC-R v1 and v2.0): SMC_CONN_PER_LGR_MAX, SMC_LINKS_ADD_LNK_MAX. */
export const DEFAULT_V2X_LIMITS: Readonly<Omit<V2xLimits, 'release'>> = {
  maxConns: SMC_CONN_PER_LGR_MAX,
  maxLinks: SMC_LINKS_ADD_LNK_MAX,
};

/** What an SMC-R Proposal offers: v1 needs typev1 R/B and the prefix area, v2 a v2 header with typev2 R/B. */
export function smcrVersionsOffered(p: ClcProposal): { v1: boolean; v2: boolean } {
  return {
    v1: smcrIndicated(p.typeV1) && p.ipArea !== null,
    v2: p.version === 2 && smcrIndicated(p.typeV2),
  };
}

export interface EidMatchOptions {
  /** This side's user EID table (32-byte EIDs). */
  localUeids: readonly Uint8Array[];
  /** The SEID is compared only when enabled here, flagged by the peer and given on both sides (SMC-D). */
  seidEnabled?: boolean;
  peerSystemEid?: Uint8Array | null;
  localSystemEid?: Uint8Array | null;
}

function eq(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === SMC_MAX_EID_LEN && b.byteLength === SMC_MAX_EID_LEN && Buffer.from(a).equals(b);
}

/**
 * smc_clc_match_eid(): the system EID when both sides have the same one and
 * SEIDs are in use, else the first of the peer's user EIDs (in the peer's
 * order) that is in the local table; null when they share none. SMC-R passes
 * no system EIDs (smc_find_rdma_v2_device_serv), so only user EIDs count.
 */
export function matchEid(
  ext: Pick<ClcV2Extension, 'seid' | 'userEids'>,
  options: EidMatchOptions,
): Buffer | null {
  const { peerSystemEid, localSystemEid } = options;
  if (
    peerSystemEid &&
    localSystemEid &&
    options.seidEnabled === true &&
    ext.seid &&
    eq(peerSystemEid, localSystemEid)
  ) {
    return Buffer.from(peerSystemEid);
  }
  for (const peer of ext.userEids) {
    if (options.localUeids.some((local) => eq(local, peer))) return Buffer.from(peer);
  }
  return null;
}

/**
 * The SMC-R part of smc_listen_v2_check(): whether SMC-Rv2 stays on the table
 * for this Proposal. A v2 offer without the v2 extension drops v2 with
 * SMC_CLC_DECL_NOV2EXT, one without user EIDs with SMC_CLC_DECL_NOUEID; the
 * code is what the server declines with if nothing else is left.
 */
export function listenV2Check(
  p: ClcProposal,
  localV2: boolean,
): { v1: boolean; v2: boolean; ext: ClcV2Extension | null; code: number | null } {
  const offered = smcrVersionsOffered(p);
  const ext = p.version === 2 ? p.v2Extension : null;
  if (!offered.v2 || !localV2) return { v1: offered.v1, v2: false, ext, code: null };
  if (ext === null) return { v1: offered.v1, v2: false, ext, code: SMC_CLC_DECL.NOV2EXT };
  if (ext.userEids.length === 0) return { v1: offered.v1, v2: false, ext, code: SMC_CLC_DECL.NOUEID };
  return { v1: offered.v1, v2: true, ext, code: null };
}

export interface V2xPreferences {
  /** Highest release this side speaks (SMC_RELEASE). */
  release?: number;
  /** SMC_CONN_PER_LGR_PREFER: 16..255. */
  maxConns?: number;
  /** SMC_LINKS_PER_LGR_MAX_PREFER: 1..2. */
  maxLinks?: number;
}

/** The preferences with the kernel's defaults filled in, checked against the v2.1 bounds. */
export function v2xPreferences(p: V2xPreferences = {}): V2xLimits {
  const release = p.release ?? SMC_RELEASE;
  const maxConns = p.maxConns ?? SMC_CONN_PER_LGR_PREFER;
  const maxLinks = p.maxLinks ?? SMC_LINKS_PER_LGR_MAX_PREFER;
  if (!Number.isInteger(release) || release < 0 || release > 15) throw new RangeError(`release ${release}`);
  if (!Number.isInteger(maxConns) || maxConns < SMC_CONN_PER_LGR_MIN || maxConns > SMC_CONN_PER_LGR_MAX) {
    throw new RangeError(
      `maxConns must be ${SMC_CONN_PER_LGR_MIN}..${SMC_CONN_PER_LGR_MAX}, got ${maxConns}`,
    );
  }
  if (!Number.isInteger(maxLinks) || maxLinks < SMC_LINKS_ADD_LNK_MIN || maxLinks > SMC_LINKS_ADD_LNK_MAX) {
    throw new RangeError(
      `maxLinks must be ${SMC_LINKS_ADD_LNK_MIN}..${SMC_LINKS_ADD_LNK_MAX}, got ${maxLinks}`,
    );
  }
  return { release, maxConns, maxLinks };
}

/**
 * Server side: the release (the lower of the Proposal's and ours, as
 * smc_listen_v2_check) and smc_clc_srv_v2x_features_validate(): from release 1
 * on, the lower of the client's and our preferred limits, declined with
 * MAXCONNERR below 16 connections or MAXLINKERR below 1 link.
 */
export function serverV2xLimits(ext: ClcV2Extension, local: V2xLimits): Negotiated<V2xLimits> {
  const release = Math.min(ext.release, local.release);
  if (release < SMC_RELEASE_1) return { ok: true, value: { release, ...DEFAULT_V2X_LIMITS } };
  const maxConns = Math.min(ext.maxConns, local.maxConns);
  if (maxConns < SMC_CONN_PER_LGR_MIN) {
    return fail(SMC_CLC_DECL.MAXCONNERR, `client offers ${ext.maxConns} connections per link group`);
  }
  const maxLinks = Math.min(ext.maxLinks, local.maxLinks);
  if (maxLinks < SMC_LINKS_ADD_LNK_MIN) {
    return fail(SMC_CLC_DECL.MAXLINKERR, `client offers ${ext.maxLinks} links per link group`);
  }
  return { ok: true, value: { release, maxConns, maxLinks } };
}

/**
 * Client side, on a first-contact Accept: the server's release and limits are
 * final (smc_connect_rdma_v2_prepare, smc_clc_clnt_v2x_features_validate):
 * fewer than 16 connections is MAXCONNERR, links outside 1..2 MAXLINKERR. A
 * release above the one we proposed is RELEASEERR (the server must not pick
 * one we did not offer).
 */
export function clientV2xLimits(fce: ClcFirstContactExt, localRelease: number): Negotiated<V2xLimits> {
  const release = fce.release;
  if (release > localRelease) {
    return fail(SMC_CLC_DECL.RELEASEERR, `server chose release ${release}, we proposed ${localRelease}`);
  }
  if (release < SMC_RELEASE_1 || fce.v2x === null)
    return { ok: true, value: { release, ...DEFAULT_V2X_LIMITS } };
  const { maxConns, maxLinks } = fce.v2x;
  if (maxConns < SMC_CONN_PER_LGR_MIN) {
    return fail(SMC_CLC_DECL.MAXCONNERR, `server grants ${maxConns} connections per link group`);
  }
  if (maxLinks > SMC_LINKS_ADD_LNK_MAX || maxLinks < SMC_LINKS_ADD_LNK_MIN) {
    return fail(SMC_CLC_DECL.MAXLINKERR, `server grants ${maxLinks} links per link group`);
  }
  return { ok: true, value: { release, maxConns, maxLinks } };
}

/**
 * Server side, on a first-contact Confirm (smc_clc_v2x_features_confirm_check):
 * the client must echo the release (RELEASEERR) and, from release 1 on, the
 * limits of our Accept (MAXCONNERR, MAXLINKERR).
 */
export function confirmV2xCheck(fce: ClcFirstContactExt, accepted: V2xLimits): number | null {
  if (fce.release !== accepted.release) return SMC_CLC_DECL.RELEASEERR;
  if (fce.release < SMC_RELEASE_1 || fce.v2x === null) return null;
  if (fce.v2x.maxConns !== accepted.maxConns) return SMC_CLC_DECL.MAXCONNERR;
  if (fce.v2x.maxLinks !== accepted.maxLinks) return SMC_CLC_DECL.MAXLINKERR;
  return null;
}

/** The first-contact hostname field: ASCII, cut to 32 bytes, blank padded (smc_clc_init). */
export function firstContactHostname(name: Buffer | string | undefined): Buffer {
  if (name instanceof Uint8Array) {
    if (name.byteLength !== SMC_MAX_HOSTNAME_LEN) throw new RangeError('hostname must be 32 bytes');
    return Buffer.from(name);
  }
  const out = Buffer.alloc(SMC_MAX_HOSTNAME_LEN, 0x20);
  out.write((name ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, SMC_MAX_HOSTNAME_LEN), 'latin1');
  return out;
}

/** Checks a user EID table for a Proposal: 1..SMC_CLC_MAX_UEID EIDs of 32 bytes. */
export function checkUeidTable(ueids: readonly Uint8Array[]): void {
  if (ueids.length > SMC_CLC_MAX_UEID) {
    throw new RangeError(`at most ${SMC_CLC_MAX_UEID} user EIDs (SMC_CLC_MAX_UEID), got ${ueids.length}`);
  }
  for (const e of ueids) {
    if (e.byteLength !== SMC_MAX_EID_LEN) throw new RangeError(`user EIDs are ${SMC_MAX_EID_LEN} bytes`);
  }
}
