import { networkInterfaces } from 'node:os';
import { type InterfaceAddress, ipv4ProposalArea } from '../handshake/prefix-match.js';
import { canonicalIp, parseCidr, parseIp } from '../net/ip.js';
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

/** The addresses of the interface that holds `localAddress` (for the server's prefix check). */
export function interfaceAddressesFor(
  localAddress: string,
  table: InterfaceTable = networkInterfaces(),
): InterfaceAddress[] {
  const ip = canonicalIp(localAddress);
  for (const addrs of Object.values(table)) {
    if (addrs === undefined) continue;
    if (!addrs.some((a) => canonicalIp(a.address) === ip)) continue;
    return addrs.map(toInterfaceAddress).filter((a): a is InterfaceAddress => a !== null);
  }
  return [];
}

/** The IP area of our Proposal for a connection leaving from `localAddress` (smc_clc_prfx_set). */
export function proposalAreaFor(
  localAddress: string,
  table: InterfaceTable = networkInterfaces(),
): ClcIpArea {
  const ip = canonicalIp(localAddress);
  const own = interfaceAddressesFor(ip, table).find((a) => Buffer.from(a.address).equals(parseIp(ip)));
  const bytes = parseIp(ip);
  if (bytes.length === 4) return ipv4ProposalArea(bytes, own?.prefixLength ?? 32);
  const prefixLength = own?.prefixLength ?? 128;
  return {
    ipv4Subnet: Buffer.alloc(4),
    ipv4PrefixLength: 0,
    ipv6Prefixes: [{ prefix: parseCidr(`${ip}/${prefixLength}`).network, prefixLength }],
  };
}
