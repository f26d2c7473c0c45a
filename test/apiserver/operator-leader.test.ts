// Leader election between two operator replicas over the real coordination.k8s.io/v1 Lease:
// exactly one acts; when the leader dies the other takes over after the lease expires; a leader
// that shuts down cleanly hands over at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Operator } from '../../operator/src/controller/operator.js';
import type { KubeClient } from '../../operator/src/kube/client.js';
import { Resources, resourcePath } from '../../operator/src/kube/resources.js';
import { startControlPlane, type ControlPlane } from './harness/control-plane.js';
import {
  OPERATOR_NS,
  adminClient,
  check,
  createNamespace,
  eventually,
  getPolicy,
  installCrds,
  restrictedOperatorKubeConfig,
  smcPolicy,
  startOperator,
  testOptions,
} from './operator/helpers.js';
import type { KubeConfig } from '@kubernetes/client-node';

const NS = 'leader-test';
const LeaseView = z.object({
  spec: z.object({
    holderIdentity: z.string().nullish(),
    leaseTransitions: z.number().nullish(),
    leaseDurationSeconds: z.number().nullish(),
  }),
});
const leaseDurationMs = testOptions('x').leaderElection.leaseDurationMs;

describe('leader election', () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let kc: KubeConfig;
  const running: Operator[] = [];
  let sampler: ReturnType<typeof setInterval> | undefined;
  let bothLeading = 0;

  const lease = () =>
    admin.request('GET', resourcePath(Resources.leases, OPERATOR_NS, 'smc-operator-leader'), LeaseView);

  beforeAll(async () => {
    cp = await startControlPlane();
    admin = adminClient(cp.kubeConfig);
    await installCrds(admin);
    await createNamespace(admin, OPERATOR_NS);
    await createNamespace(admin, NS);
    kc = await restrictedOperatorKubeConfig(cp, admin);
    // Two replicas must never act at the same time: sample continuously for the whole file.
    sampler = setInterval(() => {
      if (running.filter((o) => o.isLeader).length > 1) bothLeading++;
    }, 10);
  });

  afterAll(async () => {
    if (sampler) clearInterval(sampler);
    await Promise.all(running.map((o) => o.stop()));
    admin?.close();
    await cp?.stop();
  });

  it('elects exactly one leader, takes over after a crash, hands over on clean shutdown', async () => {
    const a = await startOperator(kc, 'replica-a');
    running.push(a);
    await eventually(() => check(a.isLeader, 'a not leader'), 15_000, 'a leading');
    const b = await startOperator(kc, 'replica-b');
    running.push(b);
    await new Promise((r) => setTimeout(r, 2 * leaseDurationMs));
    expect(a.isLeader).toBe(true);
    expect(b.isLeader).toBe(false);
    expect((await lease()).spec.holderIdentity).toBe('replica-a');

    // The leader reconciles; the follower does not write.
    const followerWrites: string[] = [];
    b.client.observe((verb, resource) => {
      if (verb !== 'GET' && verb !== 'WATCH' && resource !== 'leases')
        followerWrites.push(`${verb} ${resource}`);
    });
    await admin.request('POST', resourcePath(Resources.smcpolicies, NS), z.unknown(), {
      body: smcPolicy(NS, 'p1', { tenant: 'blue' }),
    });
    await eventually(
      async () => {
        const p = await getPolicy(admin, NS, 'p1');
        check(p.status?.observedGeneration === 1, 'p1 not reconciled');
      },
      15_000,
      'p1 status',
    );

    // Crash the leader: it stops without releasing the lease.
    const transitions = (await lease()).spec.leaseTransitions ?? 0;
    const crashedAt = Date.now();
    await a.stop({ releaseLease: false });
    running.splice(running.indexOf(a), 1);
    await eventually(() => check(b.isLeader, 'b not leader'), leaseDurationMs + 10_000, 'b takes over');
    const takeoverMs = Date.now() - crashedAt;
    // Not before the lease expired, not much after.
    expect(takeoverMs).toBeGreaterThanOrEqual(leaseDurationMs - 500);
    expect(takeoverMs).toBeLessThan(leaseDurationMs + 3_000);
    const l = await lease();
    expect(l.spec.holderIdentity).toBe('replica-b');
    expect(l.spec.leaseTransitions).toBe(transitions + 1);
    expect(followerWrites).toEqual([]);

    // The new leader reconciles.
    await admin.request('POST', resourcePath(Resources.smcpolicies, NS), z.unknown(), {
      body: smcPolicy(NS, 'p2', { tenant: 'blue' }),
    });
    await eventually(
      async () => {
        const p = await getPolicy(admin, NS, 'p2');
        check(p.status?.observedGeneration === 1, 'p2 not reconciled');
      },
      15_000,
      'p2 status',
    );

    // A clean shutdown releases the lease: a standby takes over well before expiry.
    const c = await startOperator(kc, 'replica-c');
    running.push(c);
    await new Promise((r) => setTimeout(r, 500));
    expect(c.isLeader).toBe(false);
    const stoppedAt = Date.now();
    await b.stop();
    running.splice(running.indexOf(b), 1);
    await eventually(() => check(c.isLeader, 'c not leader'), leaseDurationMs + 10_000, 'c takes over');
    expect(Date.now() - stoppedAt).toBeLessThan(leaseDurationMs);
    expect((await lease()).spec.holderIdentity).toBe('replica-c');

    expect(bothLeading).toBe(0);
  });

  it('drains on SIGTERM: unready and the Lease handed over at once, the webhook still serving', async () => {
    const webhook = (id: string) => ({
      webhook: { ...testOptions(id).webhook, enabled: true, configName: '' },
    });
    const d = await startOperator(kc, 'replica-d', webhook('replica-d'));
    running.push(d);
    await eventually(
      () => check(d.isLeader || running.some((o) => o !== d && o.isLeader), 'no leader'),
      15_000,
      'a leader',
    );
    // Only d and e compete from here.
    for (const o of running.filter((o) => o !== d)) {
      await o.stop();
      running.splice(running.indexOf(o), 1);
    }
    await eventually(() => check(d.isLeader, 'd not leader'), leaseDurationMs + 10_000, 'd leading');
    const e = await startOperator(kc, 'replica-e', webhook('replica-e'));
    running.push(e);
    await eventually(() => check(e.ready().ok, e.ready().detail), 15_000, 'e ready');
    expect(d.ready()).toEqual({ ok: true, detail: 'ok' });

    const drainedAt = Date.now();
    d.drain();
    expect(d.ready()).toEqual({ ok: false, detail: 'shutting down' });
    await eventually(() => check(e.isLeader, 'e not leader'), leaseDurationMs + 10_000, 'e takes over');
    // Handed over, not expired.
    expect(Date.now() - drainedAt).toBeLessThan(leaseDurationMs);
    expect(d.isLeader).toBe(false);
    expect((await lease()).spec.holderIdentity).toBe('replica-e');
    // Requests still routed to the draining replica are answered until stop().
    expect(d.webhook.listening).toBe(true);
    await d.stop();
    running.splice(running.indexOf(d), 1);
    expect(d.webhook.listening).toBe(false);
    expect(bothLeading).toBe(0);
  });
});
