import { describe, expect, it } from 'vitest';
import { type InterfaceAddress, ipv4ProposalArea, prefixesMatch } from './prefix-match.js';

// Rules of smc_clc_prfx_match4_rcu / smc_clc_prfx_match6_rcu and smc_clc_prfx_set4_rcu (net/smc/smc_clc.c).
const v4 = (a: number[], len: number): InterfaceAddress => ({
  family: 'ipv4',
  address: Uint8Array.from(a),
  prefixLength: len,
});
const v6 = (hex: string, len: number): InterfaceAddress => ({
  family: 'ipv6',
  address: Buffer.from(hex, 'hex'),
  prefixLength: len,
});

describe('IP prefix matching', () => {
  it('masks the client address into its subnet', () => {
    expect(ipv4ProposalArea(Uint8Array.of(10, 1, 2, 3), 24).ipv4Subnet).toEqual(Buffer.from([10, 1, 2, 0]));
    expect(ipv4ProposalArea(Uint8Array.of(10, 1, 255, 3), 20).ipv4Subnet).toEqual(
      Buffer.from([10, 1, 240, 0]),
    );
    expect(ipv4ProposalArea(Uint8Array.of(10, 1, 2, 3), 0).ipv4Subnet).toEqual(Buffer.from([0, 0, 0, 0]));
    expect(ipv4ProposalArea(Uint8Array.of(10, 1, 2, 3), 32).ipv4Subnet).toEqual(Buffer.from([10, 1, 2, 3]));
  });

  it('matches IPv4 on equal prefix length and subnet', () => {
    const area = ipv4ProposalArea(Uint8Array.of(10, 1, 2, 3), 24);
    expect(prefixesMatch(area, [v4([10, 1, 2, 200], 24)])).toBe(true);
    expect(prefixesMatch(area, [v4([10, 1, 3, 200], 24)])).toBe(false);
    expect(prefixesMatch(area, [v4([10, 1, 2, 200], 16)])).toBe(false); // same subnet, other length
    expect(prefixesMatch(area, [v6('0a010200000000000000000000000000', 24)])).toBe(false);
    expect(prefixesMatch(area, [])).toBe(false);
    expect(prefixesMatch(ipv4ProposalArea(Uint8Array.of(10, 1, 2, 3), 20), [v4([10, 1, 15, 1], 20)])).toBe(
      true,
    );
  });

  it('matches IPv6 prefixes, skipping link-local addresses and prefixes past the eighth', () => {
    const p = (hex: string, len: number): { prefix: Buffer; prefixLength: number } => ({
      prefix: Buffer.from(hex, 'hex'),
      prefixLength: len,
    });
    const area = {
      ipv4Subnet: Buffer.alloc(4),
      ipv4PrefixLength: 0,
      ipv6Prefixes: [p('20010db8000100000000000000000000', 48)],
    };
    expect(prefixesMatch(area, [v6('20010db8000100000000000000000099', 48)])).toBe(true);
    expect(prefixesMatch(area, [v6('20010db8000200000000000000000099', 48)])).toBe(false);
    expect(prefixesMatch(area, [v4([10, 0, 0, 1], 8)])).toBe(false);
    const linkLocal = { ...area, ipv6Prefixes: [p('fe800000000000000000000000000000', 64)] };
    expect(prefixesMatch(linkLocal, [v6('fe800000000000000000000000000001', 64)])).toBe(false);
    const ninth = {
      ...area,
      ipv6Prefixes: [
        ...Array(8).fill(p('fd000000000000000000000000000000', 64)),
        p('20010db8000100000000000000000000', 48),
      ],
    };
    expect(prefixesMatch(ninth, [v6('20010db8000100000000000000000099', 48)])).toBe(false);
    const odd = { ...area, ipv6Prefixes: [p('20010db8000100000000000000000000', 47)] };
    expect(prefixesMatch(odd, [v6('20010db8000000000000000000000099', 47)])).toBe(true);
  });
});
