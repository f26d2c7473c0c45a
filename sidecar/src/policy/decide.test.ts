import { describe, expect, it } from 'vitest';
import { SMC_CLC_DECL } from '../protocol/clc/decline-codes.js';
import { endpoint } from '../directory/testing.js';
import { decideInbound, decideOutbound, type LocalIdentity, parsePkey, withinBudget } from './decide.js';
import { ALL_FALLBACK_REASONS, declineCodeFor, FallbackReason } from './reasons.js';

const local: LocalIdentity = {
  tenant: 'team-a',
  allowedPeerTenants: [],
  vlan: null,
  pkey: 0xffff,
  mode: 'Prefer',
};
const up = { rdmaAvailable: true };

describe('decideOutbound', () => {
  it('relays directly, without CLC, to destinations outside the directory (any mode)', () => {
    for (const mode of ['Prefer', 'Require', 'Disabled'] as const) {
      expect(decideOutbound({ ...local, mode }, undefined, up)).toEqual({
        action: 'relay',
        via: 'direct',
        reason: 'peer-not-in-directory',
      });
    }
  });

  it('upgrades same-tenant peers on the same VLAN and partition', () => {
    expect(decideOutbound(local, endpoint('10.0.0.2'), up)).toEqual({ action: 'upgrade' });
    expect(decideOutbound({ ...local, pkey: 0x7fff }, endpoint('10.0.0.2', { pkey: '0xFFFF' }), up)).toEqual({
      action: 'upgrade',
    });
  });

  it('requires both tenants to allow each other', () => {
    const peer = endpoint('10.0.0.2', { tenant: 'team-b', allowedPeerTenants: ['team-a'] });
    expect(decideOutbound(local, peer, up)).toMatchObject({ action: 'relay', reason: 'tenant-not-allowed' });
    expect(decideOutbound({ ...local, allowedPeerTenants: ['team-b'] }, peer, up)).toEqual({
      action: 'upgrade',
    });
    expect(
      decideOutbound({ ...local, allowedPeerTenants: ['team-b'] }, { ...peer, allowedPeerTenants: [] }, up),
    ).toMatchObject({ reason: 'tenant-not-allowed' });
  });

  it('falls back through the peer sidecar on VLAN, PKey, device and mode', () => {
    expect(decideOutbound(local, endpoint('10.0.0.2', { vlan: 10 }), up)).toEqual({
      action: 'relay',
      via: 'peer-sidecar',
      reason: 'vlan-mismatch',
    });
    expect(decideOutbound({ ...local, vlan: 10 }, endpoint('10.0.0.2', { vlan: 10 }), up)).toEqual({
      action: 'upgrade',
    });
    expect(decideOutbound(local, endpoint('10.0.0.2', { pkey: '0x8002' }), up)).toMatchObject({
      reason: 'pkey-mismatch',
    });
    expect(decideOutbound(local, endpoint('10.0.0.2'), { rdmaAvailable: false })).toMatchObject({
      reason: 'no-rdma-device',
    });
    expect(decideOutbound({ ...local, mode: 'Disabled' }, endpoint('10.0.0.2'), up)).toMatchObject({
      action: 'relay',
      reason: 'mode-disabled',
    });
  });

  it('rejects instead of falling back in Require mode', () => {
    expect(decideOutbound({ ...local, mode: 'Require' }, endpoint('10.0.0.2', { vlan: 3 }), up)).toEqual({
      action: 'reject',
      reason: 'vlan-mismatch',
    });
  });
});

describe('decideInbound', () => {
  it('declines clients it cannot identify', () => {
    expect(decideInbound(local, undefined, up)).toMatchObject({
      action: 'relay',
      reason: 'peer-not-in-directory',
    });
    expect(decideInbound(local, endpoint('10.0.0.1'), up)).toEqual({ action: 'upgrade' });
  });
});

describe('withinBudget', () => {
  const upgrade = decideOutbound(local, endpoint('10.0.0.2'), up);

  it('keeps an admitted upgrade', () => {
    expect(withinBudget(local, upgrade, null)).toEqual({ action: 'upgrade' });
  });

  it('turns a refused upgrade into TCP straight to the destination, reason limit-reached', () => {
    expect(withinBudget(local, upgrade, 'limit-reached')).toEqual({
      action: 'relay',
      via: 'direct',
      reason: 'limit-reached',
    });
    // Require mode resets as it does for every other fallback of a peer with a sidecar.
    expect(withinBudget({ ...local, mode: 'Require' }, upgrade, 'limit-reached')).toEqual({
      action: 'reject',
      reason: 'limit-reached',
    });
  });

  it('an overloaded handshake stage falls back with its own reason', () => {
    expect(withinBudget(local, upgrade, 'handshake-overload')).toEqual({
      action: 'relay',
      via: 'direct',
      reason: 'handshake-overload',
    });
  });

  it('leaves plain relays alone: they take no SMC-R resources', () => {
    const direct = decideOutbound(local, undefined, up);
    const viaPeer = decideOutbound(local, endpoint('10.0.0.2', { vlan: 3 }), up);
    expect(withinBudget(local, direct, 'limit-reached')).toBe(direct);
    expect(withinBudget(local, viaPeer, 'limit-reached')).toBe(viaPeer);
  });
});

describe('reasons', () => {
  it('map to kernel decline codes where one exists', () => {
    expect(declineCodeFor(FallbackReason.NoRdmaDevice)).toBe(SMC_CLC_DECL.NOSMCRDEV);
    expect(declineCodeFor(FallbackReason.HandshakeTimeout)).toBe(SMC_CLC_DECL.TIMEOUT);
    expect(declineCodeFor(FallbackReason.PeerNotInDirectory)).toBeNull();
    // The kernel's code for buffers it cannot provide: a full SMC-R budget is one.
    expect(declineCodeFor(FallbackReason.LimitReached)).toBe(SMC_CLC_DECL.MEM);
    for (const r of ALL_FALLBACK_REASONS) expect(() => declineCodeFor(r)).not.toThrow();
  });

  it('parse directory pkeys', () => {
    expect(parsePkey('0x8001')).toBe(0x8001);
    expect(parsePkey(undefined)).toBeNull();
    expect(parsePkey('8001')).toBeNull();
  });
});
