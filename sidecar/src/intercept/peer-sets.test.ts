import { describe, expect, it } from 'vitest';
import { EndpointDirectory } from '../directory/endpoint-directory.js';
import { endpoint } from '../directory/testing.js';
import { silentLogger } from '../log.js';
import type { LocalIdentity } from '../policy/decide.js';
import { inboundRules, interceptSpecFromConfig, outboundRules } from './rules.js';
import { peerSets } from './peer-sets.js';
import { PeerSetSync } from './sync.js';
import { SidecarConfigSchema } from '../config/schema.js';

const blue: LocalIdentity = {
  tenant: 'blue',
  allowedPeerTenants: [],
  vlan: null,
  pkey: 0xffff,
  mode: 'Prefer',
};

const directory = new EndpointDirectory([
  endpoint('10.0.0.1', { tenant: 'blue', podIPs: ['10.0.0.1', 'fd00::1'] }),
  endpoint('10.0.0.2', { tenant: 'red' }),
  endpoint('10.0.0.3', { tenant: 'blue', vlan: 7 }),
  endpoint('::ffff:10.0.0.4', { tenant: 'blue', pkey: '0x0002' }),
]);

describe('redirect sets (intercept.redirect peers)', () => {
  it('redirects outbound only to peers it may upgrade with, in both families, and lets the others in plain', () => {
    expect(peerSets(blue, directory)).toEqual({
      outbound4: ['10.0.0.1'],
      outbound6: ['fd00::1'],
      inboundPlain4: ['10.0.0.2', '10.0.0.3', '10.0.0.4'],
      inboundPlain6: [],
    });
  });

  it('in Require mode still redirects every directory peer, so the sidecar refuses the ones it may not upgrade with', () => {
    const sets = peerSets({ ...blue, mode: 'Require' }, directory);
    expect([...sets.outbound4].sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
    expect([...sets.inboundPlain4].sort()).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4']);
  });

  it('in Disabled mode redirects nothing outbound and lets every peer in plain', () => {
    const sets = peerSets({ ...blue, mode: 'Disabled' }, directory);
    expect(sets.outbound4).toEqual([]);
    expect(sets.outbound6).toEqual([]);
    expect([...sets.inboundPlain4].sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
    expect(sets.inboundPlain6).toEqual(['fd00::1']);
  });

  it('allows a peer tenant both sides name', () => {
    const dir = new EndpointDirectory([
      endpoint('10.0.0.2', { tenant: 'red', allowedPeerTenants: ['blue'] }),
    ]);
    expect(peerSets({ ...blue, allowedPeerTenants: ['red'] }, dir).outbound4).toEqual(['10.0.0.2']);
    expect(peerSets(blue, dir).outbound4).toEqual([]);
  });

  it('keeps outbound whole with kernel peers, whatever intercept.redirect says', () => {
    const spec = (kernelPeers: boolean) =>
      interceptSpecFromConfig(
        SidecarConfigSchema.parse({
          tenant: 'blue',
          intercept: { redirect: 'peers' },
          policy: { kernelPeers },
        }),
      );
    expect(outboundRules(spec(false))).toContain('ip daddr != @peers4 return');
    expect(outboundRules(spec(true))).not.toContain('ip daddr != @peers4 return');
    expect(inboundRules(spec(true))).toContain('ip saddr @plain4 return');
  });
});

describe('PeerSetSync', () => {
  it('applies a changed directory once, skips an unchanged one, and retries a failed apply', async () => {
    const scripts: string[] = [];
    let fail = 1;
    const sync = new PeerSetSync(
      async (script) => {
        if (fail-- > 0) throw new Error('no such table');
        scripts.push(script);
      },
      blue,
      silentLogger(),
      5,
    );
    await sync.update(directory);
    expect(scripts).toEqual([]);
    await new Promise((r) => setTimeout(r, 50));
    await sync.idle();
    expect(scripts).toHaveLength(1);
    expect(scripts[0]).toContain('add element inet smc_sidecar peers4 { 10.0.0.1 }');
    await sync.update(new EndpointDirectory([...directory.entries()].map(([, e]) => e)));
    expect(scripts).toHaveLength(1);
    await sync.update(EndpointDirectory.empty());
    expect(scripts).toHaveLength(2);
    expect(scripts[1]).not.toContain('add element');
    sync.stop();
  });

  it('applies only the latest of directories that change while an apply runs', async () => {
    const scripts: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const sync = new PeerSetSync(
      async (script) => {
        scripts.push(script);
        if (scripts.length === 1) await gate;
      },
      blue,
      silentLogger(),
    );
    const first = sync.update(directory);
    void sync.update(new EndpointDirectory([endpoint('10.0.0.8', { tenant: 'blue' })]));
    void sync.update(new EndpointDirectory([endpoint('10.0.0.9', { tenant: 'blue' })]));
    release();
    await first;
    await sync.idle();
    expect(scripts).toHaveLength(2);
    expect(scripts[1]).toContain('peers4 { 10.0.0.9 }');
  });
});
