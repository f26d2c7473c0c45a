// Result files of test/vm/smc-option.test.ts (written by the lab scripts, smc-stats, the loader and
// smc-opt-probe in test/vm/smc-option/) and the helpers that read them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { findSmcTcpOption, SMC_TCP_OPTION_EXID } from '../../../sidecar/src/protocol/index.js';

export const hex8 = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

export interface Reason {
  code: string;
  name: string;
  count: number;
}
export interface Fallback {
  srv_cnt: number;
  clnt_cnt: number;
  server: Reason[];
  client: Reason[];
}
export interface Stats {
  stats: { smcr: { clnt_v2_succ: number; srv_v2_succ: number } };
  fallback: Fallback;
}
export interface Sock {
  state: string;
  mode: string;
  peer: string;
  fallback_reason?: string;
  peer_diagnosis?: string;
}
export interface BpfEntry {
  found: boolean;
  flags?: number;
  passive?: boolean;
  local_sent?: boolean;
  peer_seen?: boolean;
  peer_sent?: boolean;
}
export interface Accept {
  event: 'accept';
  local: string;
  remote: string;
  saved_syn: string | null;
  syn_smc_option?: boolean;
  bpf: BpfEntry | null;
  clc: { type: number; length: number; hex: string } | null;
  declined: boolean;
  app_bytes: number;
  app: string;
}
export interface Connect {
  event: 'connect';
  local: string;
  remote: string;
  bpf: BpfEntry | null;
  declined: boolean;
  reply_bytes: number;
}
export interface ServerConn {
  seq: number;
  peer_port: number;
  data: string;
  diag: { sockets: Sock[] };
}
export interface LoaderStats {
  selected: number;
  syn_written: number;
  synack_written: number;
  synack_plain: number;
  peer_syn_opt: number;
  peer_synack_opt: number;
  peer_synack_plain: number;
  write_err: number;
  synack_no_syn: number;
  skipped: number;
}

export const readText = (dir: string, file: string): string => readFileSync(join(dir, file), 'utf8');
export const readJson = <T>(dir: string, file: string): T => JSON.parse(readText(dir, file)) as T;
export const readLines = <T>(dir: string, file: string): T[] =>
  readText(dir, file)
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);

export const reasonCount = (fb: Fallback, side: 'server' | 'client', code: string): number =>
  fb[side].find((r) => r.code === code)?.count ?? 0;

/** Counter moves between two snapshots: per side, code -> increase (zeros left out). */
export function fallbackDelta(
  a: Stats,
  b: Stats,
): { client: Record<string, number>; server: Record<string, number> } {
  const side = (s: 'client' | 'server'): Record<string, number> =>
    Object.fromEntries(
      b.fallback[s]
        .map((r) => [r.code, r.count - reasonCount(a.fallback, s, r.code)] as const)
        .filter(([, d]) => d !== 0),
    );
  return { client: side('client'), server: side('server') };
}

/** The value, or a test failure naming what was missing. */
export function must<T>(v: T | null | undefined, what: string): T {
  if (v === null || v === undefined) throw new Error(`missing: ${what}`);
  return v;
}

/** TCP options of a saved SYN (TCP_SAVED_SYN: IPv4 or IPv6 header, then the TCP header). */
export function synOptions(savedSynHex: string | null | undefined): Buffer {
  const syn = Buffer.from(must(savedSynHex, 'saved SYN'), 'hex');
  const ipLen = syn.readUInt8(0) >> 4 === 4 ? (syn.readUInt8(0) & 0xf) * 4 : 40;
  const tcpLen = (syn.readUInt8(ipLen + 12) >> 4) * 4;
  if ((syn.readUInt8(ipLen + 13) & 0x12) !== 0x02) throw new Error(`not a SYN: ${savedSynHex}`);
  return syn.subarray(ipLen + 20, ipLen + tcpLen);
}

/** The SMC option found in an options string (protocol library), as hex; null when absent. */
export function smcOption(options: Buffer): string | null {
  const at = findSmcTcpOption(options);
  return at === null ? null : options.subarray(at, at + 6).toString('hex');
}
export const SMC_OPTION_HEX = `fe06${SMC_TCP_OPTION_EXID.toString(16)}`;
