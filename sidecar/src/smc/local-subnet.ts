import { networkInterfaces } from 'node:os';
import { type InterfaceAddress, ipv4ProposalArea } from '../handshake/prefix-match.js';
import { canonicalIp, cidrContains, formatIp, parseCidr, parseIp } from '../net/ip.js';
import type { ClcIpArea } from '../protocol/clc/proposal.js';

interface IfaceAddr {
  address: string;
  cidr: string | null;
  family: string | number;
}

export type InterfaceTable = Record<string, IfaceAddr[] | undefined>;

function toInterfaceAddress(a: IfaceAddr): InterfaceAddress | null {
  if (a.cidr === null) return null;
  const prefixLength = parseCidr(a.cidr).prefixLength;
  const bytes = parseIp(a.address);
  return { family: bytes.length === 4 ? 'ipv4' : 'ipv6', address: bytes, prefixLength };
}

/**
 * The pod's interfaces, read at most once per TABLE_TTL_MS: every handshake needs them, and a
 * new address shows within that time.
 */
const TABLE_TTL_MS = 1000;
let interfaces: { readAt: number; table: InterfaceTable } | null = null;

function currentInterfaces(): InterfaceTable {
  const now = Date.now();
  if (interfaces === null || now - interfaces.readAt >= TABLE_TTL_MS || now < interfaces.readAt) {
    interfaces = { readAt: now, table: networkInterfaces() };
  }
  return interfaces.table;
}

/** Answers per interface table and address: the table changes rarely, the addresses repeat. */
const addressMemo = new WeakMap<InterfaceTable, Map<string, readonly InterfaceAddress[]>>();
const areaMemo = new WeakMap<InterfaceTable, Map<string, ClcIpArea>>();

function memoised<T>(
  memo: WeakMap<InterfaceTable, Map<string, T>>,
  table: InterfaceTable,
  key: string,
  make: () => T,
): T {
  let answers = memo.get(table);
  if (answers === undefined) {
    answers = new Map();
    memo.set(table, answers);
  }
  let answer = answers.get(key);
  if (answer === undefined) {
    answer = make();
    answers.set(key, answer);
  }
  return answer;
}

/** The addresses of the interface that holds `localAddress` (for the server's prefix check). */
export function interfaceAddressesFor(
  localAddress: string,
  table: InterfaceTable = currentInterfaces(),
): readonly InterfaceAddress[] {
  const ip = canonicalIp(localAddress);
  return memoised(addressMemo, table, ip, () => findInterfaceAddresses(ip, table));
}

function findInterfaceAddresses(ip: string, table: InterfaceTable): InterfaceAddress[] {
  const all = Object.values(table).filter((a): a is IfaceAddr[] => a !== undefined);
  const convert = (addrs: IfaceAddr[]): InterfaceAddress[] =>
    addrs.map(toInterfaceAddress).filter((a): a is InterfaceAddress => a !== null);
  const exact = all.find((addrs) => addrs.some((a) => canonicalIp(a.address) === ip));
  if (exact !== undefined) return convert(exact);
  // An address answered by an interface's subnet without being configured (e.g. 127.0.0.2 on lo).
  const containing = all.find((addrs) =>
    addrs.some((a) => a.cidr !== null && cidrContains(parseCidr(a.cidr), ip)),
  );
  return containing === undefined ? [] : convert(containing);
}

/** The IP area of our Proposal for a connection leaving from `localAddress` (smc_clc_prfx_set). */
export function proposalAreaFor(
  localAddress: string,
  table: InterfaceTable = currentInterfaces(),
): ClcIpArea {
  const ip = canonicalIp(localAddress);
  return memoised(areaMemo, table, ip, () => proposalArea(ip, table));
}

function proposalArea(ip: string, table: InterfaceTable): ClcIpArea {
  const bytes = parseIp(ip);
  const candidates = interfaceAddressesFor(ip, table).filter((a) => a.address.byteLength === bytes.length);
  const own =
    candidates.find((a) => Buffer.from(a.address).equals(bytes)) ??
    candidates.find((a) =>
      cidrContains(parseCidr(`${formatIp(Buffer.from(a.address))}/${a.prefixLength}`), ip),
    );
  if (bytes.length === 4) return ipv4ProposalArea(bytes, own?.prefixLength ?? 32);
  const prefixLength = own?.prefixLength ?? 128;
  return {
    ipv4Subnet: Buffer.alloc(4),
    ipv4PrefixLength: 0,
    ipv6Prefixes: [{ prefix: parseCidr(`${ip}/${prefixLength}`).network, prefixLength }],
  };
}
