// The operator against a real kube-apiserver + etcd: CRD validation, policy status, conflicts,
// the directory, Events, the finalizer, and watches that survive an API server restart. The
// operator runs in-process as a user holding exactly the RBAC of operator/deploy/rbac.yaml.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Operator } from '../../operator/src/controller/operator.js';
import { ApiError } from '../../operator/src/errors.js';
import type { KubeClient } from '../../operator/src/kube/client.js';
import { Resources, resourcePath } from '../../operator/src/kube/resources.js';
import { shardOf } from '../../operator/src/api/directory.js';
import { EndpointDirectory } from '../../sidecar/src/directory/endpoint-directory.js';
import { DirectoryRejection, acceptShard, directoryTrust } from '../../sidecar/src/directory/verify.js';
import { linkGroupPeerKey } from '../../sidecar/src/smc/link-group-manager.js';
import { startControlPlane, type ControlPlane } from './harness/control-plane.js';
import {
  OPERATOR_NS,
  adminClient,
  check,
  condition,
  createNamespace,
  directoryOf,
  directoryShardFiles,
  directoryVersions,
  eventsFor,
  eventually,
  getPolicy,
  installCrds,
  podBody,
  putTenant,
  restrictedOperatorKubeConfig,
  setPodStatus,
  smcPolicy,
  startOperator,
} from './operator/helpers.js';

const NS = 'team-a';
const Any = z.unknown();

async function rejection(c: KubeClient, body: unknown): Promise<string> {
  try {
    await c.request('POST', resourcePath(Resources.smcpolicies, NS), Any, { body });
  } catch (e) {
    if (e instanceof ApiError) {
      expect(e.status).toBe(422);
      return e.message;
    }
    throw e;
  }
  throw new Error('the API server accepted an invalid SmcPolicy');
}

describe('smc-operator against a real API server', () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let op: Operator | undefined;

  beforeAll(async () => {
    cp = await startControlPlane();
    admin = adminClient(cp.kubeConfig);
    await installCrds(admin);
    await createNamespace(admin, OPERATOR_NS);
    await createNamespace(admin, NS);
    await createNamespace(admin, 'team-b');
    // The tenants of team-a's policies admit team-a (policy/tenancy.ts; test/apiserver/tenancy.test.ts).
    await putTenant(admin, 'blue', { namespaces: [NS] });
    await putTenant(admin, 'green', { namespaces: [NS] });
  });

  afterAll(async () => {
    await op?.stop();
    admin?.close();
    await cp?.stop();
  });

  it('rejects invalid SmcPolicy objects with the schema and CEL messages', async () => {
    const msg = await rejection(
      admin,
      smcPolicy(NS, 'bad', {
        tenant: 'blue',
        allowedPeerTenants: ['blue'],
        devices: [{ deviceName: 'mlx5_0', netdev: 'eth0' }],
        pkeys: ['0x8000', '0xzz'],
        vlans: [0, 4095],
        limits: { maxConnections: 10, rmbSize: '1Mi', maxRegisteredMemory: '4Mi' },
      }),
    );
    expect(msg).toContain("allowedPeerTenants must not contain the policy's own tenant");
    expect(msg).toContain('exactly one of deviceName, netdev or pciAddress must be set');
    expect(msg).toContain('pkey 0x0000 and 0x8000 are the invalid partition key');
    expect(msg).toContain("spec.pkeys[1] in body should match '^0x[0-9a-fA-F]{4}$'");
    expect(msg).toContain('spec.vlans[0] in body should be greater than or equal to 1');
    expect(msg).toContain('spec.vlans[1] in body should be less than or equal to 4094');
    expect(msg).toContain('maxRegisteredMemory must be at least rmbSize * maxConnections');

    const msg2 = await rejection(
      admin,
      smcPolicy(NS, 'bad2', {
        tenant: 'Not_A_Label',
        mode: 'Sometimes',
        limits: { rmbSize: '48Ki', maxRegisteredMemory: '8Ki' },
      }),
    );
    expect(msg2).toContain('spec.tenant in body should match');
    expect(msg2).toContain('spec.mode: Unsupported value: "Sometimes"');
    expect(msg2).toContain('spec.limits.rmbSize: Unsupported value: "48Ki"');

    // CEL rules run once the object passes the structural schema.
    const msg3 = await rejection(
      admin,
      smcPolicy(NS, 'bad3', {
        tenant: 'blue',
        limits: { rmbSize: '1Mi', maxRegisteredMemory: '64Ki' },
        podSelector: { matchExpressions: [{ key: 'app', operator: 'In' }] },
      }),
    );
    expect(msg3).toContain('maxRegisteredMemory must be at least rmbSize');
    expect(msg3).toContain(
      'values must be non-empty for operators In and NotIn and absent for Exists and DoesNotExist',
    );
    const msg4 = await rejection(admin, smcPolicy(NS, 'bad4', { mode: 'Require' }));
    expect(msg4).toContain('spec.tenant: Required value');

    // Valid, defaulted, and tenant is immutable.
    const ok = z.object({ spec: z.object({ mode: z.string() }) });
    const created = await admin.request('POST', resourcePath(Resources.smcpolicies, NS), ok, {
      body: smcPolicy(NS, 'valid', {
        tenant: 'blue',
        devices: [{ pciAddress: '0000:3b:00.0', nodeSelector: { matchLabels: { rdma: 'yes' } } }],
        pkeys: ['0x8001'],
        vlans: [100],
        limits: { maxConnections: 64, rmbSize: '64Ki', maxRegisteredMemory: '16Mi' },
        allowedPeerTenants: ['red'],
      }),
    });
    expect(created.spec.mode).toBe('Prefer');
    const immut = await admin
      .request('PATCH', resourcePath(Resources.smcpolicies, NS, 'valid'), Any, {
        patch: 'merge',
        body: { spec: { tenant: 'green' } },
      })
      .then(
        () => '',
        (e: unknown) => (e instanceof Error ? e.message : ''),
      );
    expect(immut).toContain('tenant is immutable');
    await admin.requestRaw('DELETE', resourcePath(Resources.smcpolicies, NS, 'valid'));
  });

  it('reconciles status, conflicts, directory and events as policies and pods change', async () => {
    const kc = await restrictedOperatorKubeConfig(cp, admin);
    op = await startOperator(kc, 'replica-a');
    const o = op;
    await eventually(() => check(o.isLeader, 'not leader'), 15_000, 'leadership');

    // Two pods of team-a with a ready sidecar, one without; one pod of team-b.
    await admin.request('POST', resourcePath(Resources.smcpolicies, NS), Any, {
      body: smcPolicy(NS, 'web', {
        tenant: 'blue',
        podSelector: { matchLabels: { app: 'web' } },
        vlans: [10],
      }),
    });
    for (const [name, ip, ready] of [
      ['web-1', '10.1.0.1', true],
      ['web-2', '10.1.0.2', true],
      ['web-3', '10.1.0.3', false],
    ] as const) {
      await admin.request('POST', resourcePath(Resources.pods, NS), Any, {
        body: podBody(NS, name, { app: 'web' }),
      });
      await setPodStatus(admin, NS, name, ip, ready);
    }
    const web = await eventually(
      async () => {
        const p = await getPolicy(admin, NS, 'web');
        check(p.status?.matchedPods === 3 && p.status.readyPods === 2, `status ${JSON.stringify(p.status)}`);
        return p;
      },
      30_000,
      'web status',
    );
    expect(web.metadata.finalizers).toContain('smc.dev/directory-cleanup');
    expect(web.status?.observedGeneration).toBe(web.metadata.generation);
    expect(condition(web, 'Ready')).toMatchObject({ status: 'False', reason: 'SidecarsNotReady' });
    expect(condition(web, 'Conflicted')).toMatchObject({ status: 'False' });
    expect(condition(web, 'Degraded')).toMatchObject({ status: 'False' });

    const dir = await eventually(
      async () => {
        const d = await directoryOf(admin, NS);
        check(d.size === 2, `directory has ${d.size} entries`);
        return d;
      },
      30_000,
      'directory',
    );
    expect([...dir.keys()].sort()).toEqual(['10.1.0.1', '10.1.0.2']);
    expect(dir.get('10.1.0.1')).toEqual({ tenant: 'blue', pod: 'web-1' });
    await eventually(
      async () => {
        const ev = await eventsFor(admin, NS, 'web');
        check(
          ev.some((e) => e.reason === 'SidecarsNotReady' && e.type === 'Warning'),
          JSON.stringify(ev),
        );
      },
      30_000,
      'NotReady event',
    );

    // The third sidecar becomes ready: status, directory and a Normal event follow.
    await setPodStatus(admin, NS, 'web-3', '10.1.0.3', true);
    await eventually(
      async () => {
        const p = await getPolicy(admin, NS, 'web');
        check(
          p.status?.readyPods === 3 && condition(p, 'Ready')?.status === 'True',
          JSON.stringify(p.status),
        );
        check((await directoryOf(admin, NS)).has('10.1.0.3'), 'web-3 not in directory');
        const ev = await eventsFor(admin, NS, 'web');
        check(
          ev.some((e) => e.reason === 'AllSidecarsReady' && e.type === 'Normal'),
          JSON.stringify(ev),
        );
      },
      30_000,
      'web-3 ready',
    );

    // An unchanged world causes no writes: a pod update that does not matter changes nothing.
    const before = await directoryVersions(admin, NS);
    const writes: string[] = [];
    o.client.observe((verb, resource) => {
      if (resource !== 'leases') writes.push(`${verb} ${resource}`);
    });
    await admin.request('PATCH', resourcePath(Resources.pods, NS, 'web-1'), Any, {
      patch: 'merge',
      body: { metadata: { annotations: { unrelated: 'x' } } },
    });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await directoryVersions(admin, NS)).toEqual(before);
    expect(writes).toEqual([]); // only the lease renewals talked to the API server

    // A newer, overlapping policy loses and is reported as Conflicted.
    await new Promise((r) => setTimeout(r, 1_100)); // creationTimestamp has second precision
    await admin.request('POST', resourcePath(Resources.smcpolicies, NS), Any, {
      body: smcPolicy(NS, 'everything', { tenant: 'green' }),
    });
    await admin.request('POST', resourcePath(Resources.pods, NS), Any, {
      body: podBody(NS, 'db-1', { app: 'db' }),
    });
    await setPodStatus(admin, NS, 'db-1', '10.1.0.9', true);
    await eventually(
      async () => {
        const p = await getPolicy(admin, NS, 'everything');
        check(condition(p, 'Conflicted')?.status === 'True', JSON.stringify(p.status));
        check(p.status?.matchedPods === 1, `matched ${p.status?.matchedPods}`);
        expect(p.status?.conflictingPolicies).toEqual(['web']);
        expect(condition(p, 'Conflicted')?.message).toContain(
          '3 selected pod(s) are governed by older SmcPolicy web',
        );
        const d = await directoryOf(admin, NS);
        check(d.get('10.1.0.9')?.tenant === 'green', 'db-1 not published as green');
        check(d.get('10.1.0.1')?.tenant === 'blue', 'web-1 not blue');
      },
      30_000,
      'conflict',
    );
    const w = await getPolicy(admin, NS, 'web');
    expect(condition(w, 'Conflicted')?.status).toBe('False');
    await eventually(async () => {
      const ev = await eventsFor(admin, NS, 'everything');
      check(
        ev.some((e) => e.reason === 'OverlapsOlderPolicy' && e.type === 'Warning'),
        JSON.stringify(ev),
      );
    });

    // Changing the winner's selector hands its pods over to the other policy.
    await admin.request('PATCH', resourcePath(Resources.smcpolicies, NS, 'web'), Any, {
      patch: 'merge',
      body: { spec: { podSelector: { matchLabels: { app: 'nothing' } } } },
    });
    await eventually(
      async () => {
        const p = await getPolicy(admin, NS, 'everything');
        const q = await getPolicy(admin, NS, 'web');
        check(
          p.status?.matchedPods === 4 && condition(p, 'Conflicted')?.status === 'False',
          JSON.stringify(p.status),
        );
        check(
          q.status?.matchedPods === 0 && q.status.observedGeneration === q.metadata.generation,
          JSON.stringify(q.status),
        );
        const d = await directoryOf(admin, NS);
        check([...d.values()].every((e) => e.tenant === 'green') && d.size === 4, JSON.stringify([...d]));
      },
      30_000,
      'handover',
    );

    // Pod deletion removes its entry.
    await admin.requestRaw('DELETE', resourcePath(Resources.pods, NS, 'web-2'), {
      query: { gracePeriodSeconds: 0 },
    });
    await eventually(
      async () => {
        check(!(await directoryOf(admin, NS)).has('10.1.0.2'), 'web-2 still published');
        check((await getPolicy(admin, NS, 'everything')).status?.matchedPods === 3, 'matched not 3');
      },
      30_000,
      'pod deletion',
    );

    // Deleting the policy: the finalizer holds it until its endpoints left the directory.
    await admin.requestRaw('DELETE', resourcePath(Resources.smcpolicies, NS, 'everything'));
    await eventually(
      async () => {
        try {
          await getPolicy(admin, NS, 'everything');
          throw new Error('still present');
        } catch (e) {
          if (!(e instanceof ApiError && e.notFound)) throw e;
        }
        const d = await directoryOf(admin, NS);
        check(d.size === 0, `directory still has ${d.size}`);
      },
      30_000,
      'policy deletion',
    );
  });

  it('resumes its watches after the API server restarts', async () => {
    const o = op;
    if (!o) throw new Error('operator not running');
    const watchesBefore = o.pods.stats.watches;
    const listsBefore = o.pods.stats.lists;
    const gonesBefore = o.pods.stats.relistsOnGone;
    await cp.restartApiServer();
    await admin.request('POST', resourcePath(Resources.smcpolicies, NS), Any, {
      body: smcPolicy(NS, 'after-restart', { tenant: 'blue', podSelector: { matchLabels: { app: 'web' } } }),
    });
    await admin.request('POST', resourcePath(Resources.pods, NS), Any, {
      body: podBody(NS, 'web-9', { app: 'web' }),
    });
    await setPodStatus(admin, NS, 'web-9', '10.1.0.99', true);
    await eventually(
      async () => {
        const p = await getPolicy(admin, NS, 'after-restart');
        check(p.status?.matchedPods === 3, JSON.stringify(p.status)); // web-1, web-3, web-9
        check((await directoryOf(admin, NS)).get('10.1.0.99')?.tenant === 'blue', 'web-9 not published');
      },
      60_000,
      'convergence after restart',
    );
    expect(o.pods.stats.watches).toBeGreaterThan(watchesBefore);
    // The watch resumed from the last resourceVersion; the only reason to list again is the new
    // API server's watch cache answering 410 Gone for a resourceVersion older than its window.
    expect(o.pods.stats.lists - listsBefore).toBe(o.pods.stats.relistsOnGone - gonesBefore);
    expect(o.isLeader).toBe(true);
  });

  it('publishes every address of a dual-stack pod in its signed entry; a sidecar finds the pod by either', async () => {
    const o = op;
    const publicKey = o?.directoryPublicKey;
    if (!o || publicKey === undefined) throw new Error('operator not running');
    await admin.request('POST', resourcePath(Resources.smcpolicies, NS), Any, {
      body: smcPolicy(NS, 'dual', { tenant: 'blue', podSelector: { matchLabels: { app: 'dual' } } }),
    });
    await admin.request('POST', resourcePath(Resources.pods, NS), Any, {
      body: podBody(NS, 'dual-0', { app: 'dual' }),
    });
    // Published with its IPv4 address first; then the status lists the IPv6 one too, and that
    // change alone (same podIP) reaches the directory.
    await setPodStatus(admin, NS, 'dual-0', '10.1.0.50', true);
    await eventually(
      async () => check((await directoryOf(admin, NS)).get('10.1.0.50')?.pod === 'dual-0', 'not published'),
      30_000,
      'dual-0 published',
    );
    await setPodStatus(admin, NS, 'dual-0', '10.1.0.50', true, ['fd00:1::50']);
    const trust = directoryTrust([publicKey], NS);
    const { file, text, shard } = await eventually(
      async () => {
        for (const [f, t] of await directoryShardFiles(admin, NS)) {
          const accepted = acceptShard(`/d/${f}`, t, trust);
          const e = accepted.doc.endpoints.find((x) => x.pod === 'dual-0');
          if (e !== undefined) {
            check(e.podIPs?.length === 2, `podIPs ${JSON.stringify(e.podIPs)}`);
            return { file: f, text: t, shard: accepted };
          }
        }
        throw new Error('dual-0 not in any shard');
      },
      30_000,
      'dual-0 with its IPv6 address',
    );
    // One entry, in the shard of its primary address, listing both, the primary first.
    const entries = shard.doc.endpoints.filter((x) => x.pod === 'dual-0');
    expect(entries.map((x) => [x.podIP, x.podIPs])).toEqual([['10.1.0.50', ['10.1.0.50', 'fd00:1::50']]]);
    expect(file).toBe(`shard-${shardOf('10.1.0.50', shard.doc.shards)}.json`);
    // The sidecar's index: either address, any spelling, is the same pod, hence one link-group key.
    const dir = new EndpointDirectory(shard.doc.endpoints);
    const keys = ['10.1.0.50', '::ffff:10.1.0.50', 'fd00:1::50', 'fd00:1:0:0:0:0:0:50'].map((a) => {
      expect(dir.lookup(a)?.pod, a).toBe('dual-0');
      return linkGroupPeerKey(dir.lookup(a), a);
    });
    expect(new Set(keys)).toEqual(new Set([`${NS}/dual-0`]));
    // The signature covers the addresses: another IPv6 address put in (to draw that address's
    // connections to this pod's entry) is refused.
    const doc = JSON.parse(text) as { endpoints: Record<string, unknown>[] };
    const forged = JSON.stringify({
      ...doc,
      endpoints: doc.endpoints.map((x) =>
        x['pod'] === 'dual-0' ? { ...x, podIPs: ['10.1.0.50', 'fd00:1::66'] } : x,
      ),
    });
    let reason = '';
    try {
      acceptShard(`/d/${file}`, forged, trust);
    } catch (e) {
      if (e instanceof DirectoryRejection) reason = e.reason;
    }
    expect(reason).toBe('bad-signature');
  });
});
