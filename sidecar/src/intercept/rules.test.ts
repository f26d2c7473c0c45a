import { describe, expect, it } from 'vitest';
import { silentLogger } from '../log.js';
import { InterceptApplier } from './applier.js';
import {
  type InterceptSpec,
  inboundRules,
  installScript,
  outboundRules,
  peerSetsScript,
  removeScript,
} from './rules.js';

const base: InterceptSpec = {
  sidecarUid: 7609,
  excludeOutboundUids: [],
  outboundPort: 15101,
  inboundPort: 15106,
  sidecarPorts: [15100, 15190, 15121, 15101, 15106],
  inbound: true,
  excludeOutboundPorts: [],
  excludeInboundPorts: [],
  excludeOutboundCidrs: [],
  excludeInboundCidrs: [],
  redirect: 'all',
  kernelPeers: false,
};

describe('interception rules', () => {
  it('redirects outbound TCP except the sidecar uid and loopback, for IPv4 and IPv6', () => {
    expect(outboundRules(base)).toEqual([
      'meta l4proto != tcp return',
      'meta skuid 7609 return',
      'oifname "lo" return',
      'ip daddr 127.0.0.0/8 return',
      'ip6 daddr ::1 return',
      'meta l4proto tcp redirect to :15101',
    ]);
  });

  it("exempts another proxy's uid (Istio's Envoy) with the sidecar's", () => {
    expect(outboundRules({ ...base, excludeOutboundUids: [1337, 7609] })[1]).toBe(
      'meta skuid { 1337, 7609 } return',
    );
  });

  it('redirects inbound TCP except the sidecar ports', () => {
    expect(inboundRules(base)).toEqual([
      'meta l4proto != tcp return',
      'iifname "lo" return',
      'tcp dport { 15100, 15101, 15106, 15121, 15190 } return',
      'meta l4proto tcp redirect to :15106',
    ]);
  });

  it('excludes configured ports and CIDRs per family, normalised and deduplicated', () => {
    const spec: InterceptSpec = {
      ...base,
      excludeOutboundPorts: [5432, 22, 22],
      excludeOutboundCidrs: ['10.96.0.5/12', 'fd00::1/8', '169.254.169.254'],
      excludeInboundPorts: [9100],
      excludeInboundCidrs: ['2001:db8::/32'],
    };
    expect(outboundRules(spec).slice(5, -1)).toEqual([
      'tcp dport { 22, 5432 } return',
      'ip daddr { 10.96.0.0/12, 169.254.169.254/32 } return',
      'ip6 daddr fd00::/8 return',
    ]);
    expect(inboundRules(spec).slice(3, -1)).toEqual([
      'tcp dport 9100 return',
      'ip6 saddr 2001:db8::/32 return',
    ]);
  });

  it('builds an idempotent transaction on a dedicated inet table', () => {
    const script = installScript(base);
    expect(script).toMatch(
      /^table inet smc_sidecar \{\n\}\ndelete table inet smc_sidecar\ntable inet smc_sidecar \{\n/,
    );
    // Just before dstnat (-100): before Istio's nat chains, whichever init container ran last.
    expect(script).toContain('type nat hook output priority -101; policy accept;');
    expect(script).toContain('type nat hook prerouting priority -101; policy accept;');
    expect(installScript({ ...base, inbound: false })).not.toContain('prerouting');
    expect(removeScript()).toBe('table inet smc_sidecar {\n}\ndelete table inet smc_sidecar\n');
  });

  it('applies scripts through the runner', async () => {
    const scripts: string[] = [];
    const applier = new InterceptApplier(async (s) => {
      scripts.push(s);
    }, silentLogger());
    await applier.install(base);
    await applier.remove();
    expect(scripts).toEqual([installScript(base), removeScript()]);
  });

  it('with redirect peers, redirects outbound only to the peer sets and skips the plain sources inbound', () => {
    const peers = { ...base, redirect: 'peers' as const };
    expect(outboundRules(peers).slice(-3)).toEqual([
      'ip daddr != @peers4 return',
      'ip6 daddr != @peers6 return',
      'meta l4proto tcp redirect to :15101',
    ]);
    expect(inboundRules(peers).slice(-3)).toEqual([
      'ip saddr @plain4 return',
      'ip6 saddr @plain6 return',
      'meta l4proto tcp redirect to :15106',
    ]);
    const script = installScript(peers);
    for (const set of [
      'peers4 { type ipv4_addr; }',
      'peers6 { type ipv6_addr; }',
      'plain4 { type ipv4_addr; }',
      'plain6 { type ipv6_addr; }',
    ])
      expect(script).toContain(`\tset ${set}`);
    // The sets are declared before the chains that name them.
    expect(script.indexOf('set peers4')).toBeLessThan(script.indexOf('chain output'));
    expect(installScript(base)).not.toContain('set ');
    // With kernel peers every destination may speak SMC-R: outbound stays whole, inbound keeps its set.
    const kernel = { ...peers, kernelPeers: true };
    expect(outboundRules(kernel)).toEqual(outboundRules(base));
    expect(inboundRules(kernel)).toEqual(inboundRules(peers));
  });

  it('replaces all four sets in one transaction, sorted and deduplicated, empty ones flushed only', () => {
    expect(
      peerSetsScript({
        outbound4: ['10.0.0.2', '10.0.0.1', '10.0.0.2'],
        outbound6: [],
        inboundPlain4: [],
        inboundPlain6: ['fd00::1'],
      }),
    ).toBe(
      [
        'flush set inet smc_sidecar peers4',
        'add element inet smc_sidecar peers4 { 10.0.0.1, 10.0.0.2 }',
        'flush set inet smc_sidecar peers6',
        'flush set inet smc_sidecar plain4',
        'flush set inet smc_sidecar plain6',
        'add element inet smc_sidecar plain6 { fd00::1 }',
        '',
      ].join('\n'),
    );
  });
});
