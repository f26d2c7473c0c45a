import type { ClcIpArea } from '../protocol/clc/proposal.js';

/**
 * An address configured on the interface the connection uses, with its
 * prefix length (what `ip addr` shows as addr/len).
 */
export interface InterfaceAddress {
  family: 'ipv4' | 'ipv6';
  address: Uint8Array;
  prefixLength: number;
}

/** SMC_CLC_MAX_V6_PREFIX: the kernel looks at no more than 8 proposed IPv6 prefixes. */
const MAX_V6_PREFIX = 8;

function samePrefix(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  if (bits < 0 || bits > a.byteLength * 8 || a.byteLength !== b.byteLength) return false;
  const whole = Math.floor(bits / 8);
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = bits % 8;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((a[whole] ?? 0) & mask) === ((b[whole] ?? 0) & mask);
}

function isLinkLocalV6(address: Uint8Array): boolean {
  return address[0] === 0xfe && ((address[1] ?? 0) & 0xc0) === 0x80;
}

/**
 * Whether the client's proposed prefixes share a subnet with one of our
 * addresses, as smc_clc_prfx_match() decides (net/smc/smc_clc.c): with no IPv6
 * prefixes, an IPv4 address with the same prefix length whose subnet contains
 * the proposed one; otherwise a non-link-local IPv6 address with the same
 * prefix length and prefix.
 */
export function prefixesMatch(proposed: ClcIpArea, local: readonly InterfaceAddress[]): boolean {
  if (proposed.ipv6Prefixes.length === 0) {
    return local.some(
      (a) =>
        a.family === 'ipv4' &&
        a.address.byteLength === 4 &&
        a.prefixLength === proposed.ipv4PrefixLength &&
        samePrefix(a.address, proposed.ipv4Subnet, a.prefixLength),
    );
  }
  const prefixes = proposed.ipv6Prefixes.slice(0, MAX_V6_PREFIX);
  return local.some(
    (a) =>
      a.family === 'ipv6' &&
      a.address.byteLength === 16 &&
      !isLinkLocalV6(a.address) &&
      prefixes.some(
        (p) => p.prefixLength === a.prefixLength && samePrefix(a.address, p.prefix, a.prefixLength),
      ),
  );
}

/** The IPv4 prefix area a client proposes for its outgoing address (smc_clc_prfx_set4_rcu). */
export function ipv4ProposalArea(address: Uint8Array, prefixLength: number): ClcIpArea {
  const subnet = Buffer.alloc(4);
  for (let bit = 0; bit < prefixLength && bit < 32; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    subnet[byte] = (subnet[byte] ?? 0) | ((address[byte] ?? 0) & mask);
  }
  return { ipv4Subnet: subnet, ipv4PrefixLength: prefixLength, ipv6Prefixes: [] };
}
