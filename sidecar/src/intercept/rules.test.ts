import { describe, expect, it } from 'vitest';
import { silentLogger } from '../log.js';
import { InterceptApplier } from './applier.js';
import { type InterceptSpec, inboundRules, installScript, outboundRules, removeScript } from './rules.js';

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
});
