import type { ByteReader, ByteWriter } from '../bytes.js';

/**
 * struct smc_rmb_rtoken (smc_llc.c, "format defined in RFC7609"), 13 bytes:
 * link id (or, in the first entry of Confirm RKey, the count), rkey u32,
 * RMB virtual address u64.
 */
export const RTOKEN_LENGTH = 13;

export interface LlcRtoken {
  linkId: number;
  rmbKey: number;
  rmbVaddr: bigint;
}

export function readRtoken(r: ByteReader, at: number, field: string): LlcRtoken {
  return {
    linkId: r.u8(at, `${field}.linkId`),
    rmbKey: r.u32(at + 1, `${field}.rmbKey`),
    rmbVaddr: r.u64(at + 5, `${field}.rmbVaddr`),
  };
}

export function writeRtoken(w: ByteWriter, at: number, t: LlcRtoken, field: string): void {
  w.u8(at, t.linkId, `${field}.linkId`);
  w.u32(at + 1, t.rmbKey, `${field}.rmbKey`);
  w.u64(at + 5, t.rmbVaddr, `${field}.rmbVaddr`);
}
