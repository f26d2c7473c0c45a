import { describe, expect, it } from 'vitest';
import { findOriginalDst, parseConntrack } from './conntrack.js';

const TABLE = [
  'ipv4     2 tcp      6 431999 ESTABLISHED src=10.99.0.1 dst=10.99.0.2 sport=40000 dport=8080 src=127.0.0.1 dst=10.99.0.1 sport=15001 dport=40000 [ASSURED] mark=0 zone=0 use=2',
  'ipv4     2 udp      17 29 src=10.99.0.1 dst=10.99.0.53 sport=5353 dport=53 src=10.99.0.53 dst=10.99.0.1 sport=53 dport=5353 mark=0 zone=0 use=2',
  'ipv6     10 tcp      6 119 SYN_SENT src=fd77:0000:0000:0000:0000:0000:0000:0001 dst=fd77:0000:0000:0000:0000:0000:0000:0002 sport=41000 dport=6379 [UNREPLIED] src=0000:0000:0000:0000:0000:0000:0000:0001 dst=fd77:0000:0000:0000:0000:0000:0000:0001 sport=15001 dport=41000 mark=0 zone=0 use=2',
  'ipv4     2 tcp      6 60 SYN_RECV src=10.99.0.1 dst=10.99.0.2 sport=40001 dport=9000 src=10.99.0.2 dst=10.99.0.1 sport=15006 dport=40001 mark=0 zone=0 use=2',
  'garbage line',
].join('\n');

describe('conntrack lookup', () => {
  const entries = parseConntrack(TABLE);

  it('parses TCP entries only, canonicalising addresses', () => {
    expect(entries).toHaveLength(3);
    expect(entries[1]?.original.dst).toEqual({ address: 'fd77::2', port: 6379, family: 6 });
  });

  it('finds the original destination of an outbound IPv4 redirect', () => {
    expect(findOriginalDst(entries, { address: '10.99.0.1', port: 40000 }, 15001)).toEqual({
      address: '10.99.0.2',
      port: 8080,
      family: 4,
    });
    expect(findOriginalDst(entries, { address: '::ffff:10.99.0.1', port: 40000 }, 15001)?.port).toBe(8080);
  });

  it('finds IPv6 and inbound redirects, and nothing for strangers', () => {
    expect(findOriginalDst(entries, { address: 'fd77::1', port: 41000 }, 15001)?.address).toBe('fd77::2');
    expect(findOriginalDst(entries, { address: '10.99.0.1', port: 40001 }, 15006)?.port).toBe(9000);
    expect(findOriginalDst(entries, { address: '10.99.0.1', port: 40000 }, 15006)).toBeNull();
  });
});
