import { describe, expect, it } from 'vitest';
import { canonicalIp, cidrContains, formatSocketAddress, parseCidr, parseIp } from './ip.js';

describe('ip', () => {
  it('canonicalises IPv4, IPv6 and v4-mapped addresses', () => {
    expect(canonicalIp('10.0.0.1')).toBe('10.0.0.1');
    expect(canonicalIp('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(canonicalIp('fd00:0000:0000:0000:0000:0000:0000:0001')).toBe('fd00::1');
    expect(canonicalIp('FD00:0:0:1:0:0:0:1')).toBe('fd00:0:0:1::1');
    expect(canonicalIp('::1')).toBe('::1');
    expect(canonicalIp('::')).toBe('::');
    expect(canonicalIp('fe80::1%eth0')).toBe('fe80::1');
    expect(() => parseIp('10.0.0')).toThrow(/invalid address/);
  });

  it('answers the same from its cache, and stays right past the cache size', () => {
    for (let round = 0; round < 2; round++) {
      for (let i = 1; i <= 5000; i++) {
        const v4 = `10.${(i >> 8) & 255}.${i & 255}.7`;
        expect(canonicalIp(`::ffff:${v4}`)).toBe(v4);
        expect(canonicalIp(`FD00:0:0:0:0:0:0:${i.toString(16)}`)).toBe(`fd00::${i.toString(16)}`);
      }
    }
    expect(() => canonicalIp('10.0.0')).toThrow(/invalid address/);
    expect(() => canonicalIp('10.0.0')).toThrow(/invalid address/);
  });

  it('parses CIDRs and masks host bits', () => {
    expect(parseCidr('10.1.2.3/8').text).toBe('10.0.0.0/8');
    expect(parseCidr('fd00::1/16').text).toBe('fd00::/16');
    expect(parseCidr('192.168.1.1').text).toBe('192.168.1.1/32');
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/prefix length/);
    expect(cidrContains(parseCidr('10.0.0.0/8'), '10.200.0.1')).toBe(true);
    expect(cidrContains(parseCidr('10.0.0.0/8'), '::ffff:10.200.0.1')).toBe(true);
    expect(cidrContains(parseCidr('10.0.0.0/8'), '11.0.0.1')).toBe(false);
    expect(cidrContains(parseCidr('fd00::/8'), 'fd12::1')).toBe(true);
    expect(cidrContains(parseCidr('fd00::/8'), '10.0.0.1')).toBe(false);
  });

  it('formats socket addresses', () => {
    expect(formatSocketAddress({ address: 'fd00::1', port: 80 })).toBe('[fd00::1]:80');
    expect(formatSocketAddress({ address: '10.0.0.1', port: 80 })).toBe('10.0.0.1:80');
  });
});
