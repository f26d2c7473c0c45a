// KubeSmcNodeStore over the operator's API-server client, against a stand-in API server on
// loopback: the requests it makes (verb, path, query, body, credentials) and how API errors reach
// publishSmcNode. test/apiserver/chart.test.ts runs it against a real kube-apiserver.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSmcNode } from './mapping.js';
import { KubeSmcNodeStore, publishSmcNode, StoreError } from './publisher.js';
import { rxeInventory } from './testing.js';

interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  userAgent: string | undefined;
  body: unknown;
}

type Answer = { status: number; body: unknown };

const status = (code: number, reason: string, message: string): Answer => ({
  status: code,
  body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code },
});

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? undefined : JSON.parse(text);
}

describe('KubeSmcNodeStore', () => {
  let server: Server;
  let kc: KubeConfig;
  const seen: Seen[] = [];
  /** Answers in order; the test sets them. */
  let answers: Answer[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      void readBody(req).then((body) => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          auth: req.headers.authorization,
          userAgent: req.headers['user-agent'],
          body,
        });
        const a = answers.shift() ?? status(500, 'InternalError', 'no answer scripted');
        res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    kc = new KubeConfig();
    kc.loadFromOptions({
      // client-node sends nothing over plain HTTP unless told TLS is not verified anyway.
      clusters: [
        {
          name: 'c',
          server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          skipTLSVerify: true,
        },
      ],
      users: [{ name: 'u', token: 'agent-token' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('creates a missing SmcNode, then writes its status, with the agent as field manager', async () => {
    seen.length = 0;
    const desired = buildSmcNode('node-a', rxeInventory(), new Date('2025-01-01T00:00:00Z'));
    const created = {
      ...desired,
      metadata: { ...desired.metadata, resourceVersion: '1' },
      status: undefined,
    };
    answers = [
      status(404, 'NotFound', 'smcnodes.smc.dev "node-a" not found'),
      { status: 201, body: created },
      { status: 200, body: { ...desired, metadata: { ...desired.metadata, resourceVersion: '2' } } },
    ];
    const store = new KubeSmcNodeStore(kc);
    try {
      const out = await publishSmcNode(store, desired);
      expect(out).toMatchObject({ result: 'created', writes: ['create', 'status'] });
      expect(out.object.metadata.resourceVersion).toBe('2');
    } finally {
      store.close();
    }
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET /apis/smc.dev/v1alpha1/smcnodes/node-a',
      'POST /apis/smc.dev/v1alpha1/smcnodes?fieldManager=smc-node-agent',
      'PUT /apis/smc.dev/v1alpha1/smcnodes/node-a/status?fieldManager=smc-node-agent',
    ]);
    expect(seen.every((s) => s.auth === 'Bearer agent-token' && s.userAgent === 'smc-node-agent')).toBe(true);
    // The create carries no status or resourceVersion; the status write the one it read.
    expect(seen[1]?.body).toMatchObject({
      kind: 'SmcNode',
      metadata: { name: 'node-a' },
      spec: { nodeName: 'node-a' },
    });
    expect(seen[1]?.body).not.toHaveProperty('metadata.resourceVersion');
    expect(seen[2]?.body).toMatchObject({ metadata: { resourceVersion: '1' }, status: { deviceCount: 1 } });
  });

  it('hands API errors on with their HTTP status and the API server message', async () => {
    seen.length = 0;
    answers = [status(403, 'Forbidden', 'may only write SmcNode node-b, not node-c')];
    const store = new KubeSmcNodeStore(kc);
    try {
      const err = await store.get('node-c').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).code).toBe(403);
      expect((err as StoreError).message).toMatch(
        /^get smcnode node-c: GET \/apis\/smc\.dev\/v1alpha1\/smcnodes\/node-c: 403 Forbidden may only write SmcNode node-b, not node-c$/,
      );
      // A conflict on the status write: publishSmcNode reads again and retries.
      const desired = buildSmcNode('node-d', rxeInventory(), new Date('2025-01-01T00:00:00Z'));
      const live = { ...desired, metadata: { ...desired.metadata, resourceVersion: '5' }, status: undefined };
      answers = [
        { status: 200, body: live },
        status(409, 'Conflict', 'the object has been modified'),
        { status: 200, body: live },
        { status: 200, body: { ...desired, metadata: { ...desired.metadata, resourceVersion: '7' } } },
      ];
      const out = await publishSmcNode(store, desired);
      expect(out).toMatchObject({ result: 'updated', writes: ['status'] });
      expect(seen.slice(-4).map((r) => r.method)).toEqual(['GET', 'PUT', 'GET', 'PUT']);
    } finally {
      store.close();
    }
  });
});
