import { describe, expect, it } from 'vitest';
import { prefixesMatch } from '../handshake/prefix-match.js';
import { formatIp } from '../net/ip.js';
import { type InterfaceTable, interfaceAddressesFor, proposalAreaFor } from './local-subnet.js';

/** A dual-stack pod's interfaces as os.networkInterfaces() reports them. */
function pod(v4: string, v6: string): InterfaceTable {
  return {
    lo: [
      { address: '127.0.0.1', cidr: '127.0.0.1/8', family: 'IPv4' },
      { address: '::1', cidr: '::1/128', family: 'IPv6' },
    ],
    eth0: [
      { address: v4, cidr: `${v4}/24`, family: 'IPv4' },
      { address: v6, cidr: `${v6}/64`, family: 'IPv6' },
      { address: 'fe80::1', cidr: 'fe80::1/64', family: 'IPv6' },
    ],
  };
}

const client = pod('10.244.1.5', 'fd00:10:244:1::5');
const server = pod('10.244.1.6', 'fd00:10:244:1::6');

describe('the CLC IP prefix area on a dual-stack pod', () => {
  it('proposes the IPv6 prefix for a connection from the IPv6 address, the IPv4 subnet for one from IPv4', () => {
    const v6 = proposalAreaFor('fd00:10:244:1::5', client);
    expect(v6.ipv4PrefixLength).toBe(0);
    expect(v6.ipv6Prefixes.map((p) => `${formatIp(Buffer.from(p.prefix))}/${p.prefixLength}`)).toEqual([
      'fd00:10:244:1::/64',
    ]);
    const v4 = proposalAreaFor('::ffff:10.244.1.5', client);
    expect([formatIp(Buffer.from(v4.ipv4Subnet)), v4.ipv4PrefixLength, v4.ipv6Prefixes]).toEqual([
      '10.244.1.0',
      24,
      [],
    ]);
  });

  it("matches the server's addresses on the interface the connection arrived at, in either family", () => {
    const local6 = interfaceAddressesFor('fd00:10:244:1::6', server);
    expect(prefixesMatch(proposalAreaFor('fd00:10:244:1::5', client), local6)).toBe(true);
    const local4 = interfaceAddressesFor('::ffff:10.244.1.6', server);
    expect(prefixesMatch(proposalAreaFor('10.244.1.5', client), local4)).toBe(true);
    // Another node's pod subnet is no common prefix (SMC-R v1 needs one; SMC-Rv2 does not).
    const far = pod('10.244.2.7', 'fd00:10:244:2::7');
    expect(prefixesMatch(proposalAreaFor('fd00:10:244:2::7', far), local6)).toBe(false);
  });
});
