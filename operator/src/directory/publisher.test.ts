import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ConfigMap } from '../api/core.js';
import { DIRECTORY_HASH_ANNOTATION } from '../api/directory.js';
import {
  generateSigningKeyPem,
  signDocument,
  signatureProblem,
  signingKeyFromPem,
  verificationKeys,
} from '../api/directory-signature.js';
import { KubeClient, type RequestOptions } from '../kube/client.js';
import { Store } from '../kube/store.js';
import { renderShard } from './build.js';
import { DirectoryPublisher } from './publisher.js';

/** Records requests and answers them as an API server would for ConfigMaps (no HTTP). */
class FakeClient extends KubeClient {
  readonly calls: { method: string; path: string; ro: RequestOptions }[] = [];
  listItems: unknown[] = [];
  constructor() {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    super(kc);
  }
  override requestRaw(method: string, path: string, ro: RequestOptions = {}): Promise<unknown> {
    this.calls.push({ method, path, ro });
    if (method === 'GET') {
      // As the API server: the items whose name the field selector asks for.
      const name = String(ro.query?.['fieldSelector'] ?? '').replace(/^metadata\.name=/, '');
      const items = this.listItems.filter(
        (i) => (i as { metadata: { name: string } }).metadata.name === name,
      );
      return Promise.resolve({ metadata: {}, items });
    }
    return Promise.resolve(ro.body ?? {});
  }
}

const key = signingKeyFromPem(generateSigningKeyPem());
const endpoints = [
  {
    podIP: '10.0.0.1',
    node: 'n',
    namespace: 'shop',
    pod: 'web-0',
    tenant: 'blue',
    sidecarPort: 15100,
    allowedPeerTenants: [],
  },
];

function setup(now: number): { client: FakeClient; cache: Store<ConfigMap>; pub: DirectoryPublisher } {
  const client = new FakeClient();
  const cache = new Store<ConfigMap>();
  const pub = new DirectoryPublisher(client, cache, pino({ level: 'silent' }), 8, () => now);
  pub.useSigningKey(key);
  return { client, cache, pub };
}

const written = (client: FakeClient): { data: Record<string, string>; metadata: ConfigMap['metadata'] }[] =>
  client.calls
    .filter((c) => c.method === 'POST' || c.method === 'PUT')
    .map((c) => c.ro.body as { data: Record<string, string>; metadata: ConfigMap['metadata'] });

describe('DirectoryPublisher', () => {
  it('writes signed shards for the namespace, and nothing when only the clock moved', async () => {
    const { client, cache, pub } = setup(1_000);
    await expect(
      pub.publish(new Map([['shop', [renderShard(0, 1, endpoints, 'shop')]]]), 1),
    ).resolves.toMatchObject({
      created: 1,
    });
    const [cm] = written(client);
    const text = cm?.data['shard-0.json'] ?? '';
    const doc: unknown = JSON.parse(text);
    expect(signatureProblem(doc, verificationKeys([key.publicKey]))).toBeNull();
    expect(doc).toMatchObject({ namespace: 'shop', issuedAt: 1_000, keyId: key.keyId });
    // The watch delivers our write: the same content later costs no request.
    cache.set({ metadata: { ...(cm?.metadata ?? { name: '' }), namespace: 'shop' }, data: cm?.data ?? {} });
    const before = client.calls.length;
    await pub.publish(new Map([['shop', [renderShard(0, 1, endpoints, 'shop')]]]), 1);
    expect(client.calls.length).toBe(before);
  });

  it('a new key signs every shard again', async () => {
    const { client, cache, pub } = setup(1_000);
    await pub.publish(new Map([['shop', [renderShard(0, 1, endpoints, 'shop')]]]), 1);
    const [cm] = written(client);
    cache.set({ metadata: { ...(cm?.metadata ?? { name: '' }), namespace: 'shop' }, data: cm?.data ?? {} });
    const other = signingKeyFromPem(generateSigningKeyPem());
    pub.useSigningKey(other);
    await pub.publish(new Map([['shop', [renderShard(0, 1, endpoints, 'shop')]]]), 1);
    const again = written(client)[1];
    expect(again?.metadata.annotations?.[DIRECTORY_HASH_ANNOTATION]).not.toBe(
      cm?.metadata.annotations?.[DIRECTORY_HASH_ANNOTATION],
    );
    expect(JSON.parse(again?.data['shard-0.json'] ?? '{}')).toMatchObject({ keyId: other.keyId });
  });

  it('issues later than the shard it replaces when this key signed it (a lagging clock), not when someone else wrote it', async () => {
    const { client, cache, pub } = setup(5_000);
    const { version, shard, shards, endpoints: eps } = renderShard(0, 1, [], 'shop').doc;
    const ours = signDocument(
      { version, shard, shards, namespace: 'shop', issuedAt: 9_000, endpoints: eps },
      key,
    );
    cache.set({
      metadata: {
        name: 'smc-directory-0',
        namespace: 'shop',
        annotations: { [DIRECTORY_HASH_ANNOTATION]: 'old' },
      },
      data: { 'shard-0.json': ours },
    });
    await pub.publish(new Map([['shop', [renderShard(0, 1, endpoints, 'shop')]]]), 1);
    expect(JSON.parse(written(client)[0]?.data['shard-0.json'] ?? '{}')).toMatchObject({ issuedAt: 9_001 });

    const s2 = setup(5_000);
    const forged = JSON.stringify({ ...(JSON.parse(ours) as object), issuedAt: 8_000_000_000_000 });
    s2.cache.set({
      metadata: {
        name: 'smc-directory-0',
        namespace: 'shop',
        annotations: { [DIRECTORY_HASH_ANNOTATION]: 'x' },
      },
      data: { 'shard-0.json': forged },
    });
    await s2.pub.publish(new Map([['shop', [renderShard(0, 1, endpoints, 'shop')]]]), 1);
    expect(JSON.parse(written(s2.client)[0]?.data['shard-0.json'] ?? '{}')).toMatchObject({
      issuedAt: 5_000,
    });
  });

  it('finds the shard count shards were written with, and sweeps the ones beyond by name', async () => {
    const { client, cache, pub } = setup(1_000);
    cache.set({
      metadata: { name: 'smc-directory-0', namespace: 'shop' },
      data: { 'shard-0.json': renderShard(0, 6, [], 'shop').json },
    });
    expect(pub.shardCountSeen()).toBe(6);
    client.listItems = [
      { metadata: { name: 'smc-directory-4', namespace: 'shop' } },
      { metadata: { name: 'smc-directory-5', namespace: 'team-b' } },
    ];
    await pub.sweepShards(4, 6);
    const lists = client.calls.filter((c) => c.method === 'GET');
    expect(lists.map((c) => c.ro.query?.['fieldSelector'])).toEqual([
      'metadata.name=smc-directory-4',
      'metadata.name=smc-directory-5',
    ]);
    expect(lists.every((c) => c.path === '/api/v1/configmaps')).toBe(true);
    expect(client.calls.filter((c) => c.method === 'DELETE').map((c) => c.path)).toEqual([
      '/api/v1/namespaces/shop/configmaps/smc-directory-4',
      '/api/v1/namespaces/team-b/configmaps/smc-directory-5',
    ]);
  });

  it('refuses to publish before the key is loaded', async () => {
    const client = new FakeClient();
    const pub = new DirectoryPublisher(client, new Store<ConfigMap>(), pino({ level: 'silent' }));
    await expect(pub.publish(new Map([['shop', [renderShard(0, 1, [], 'shop')]]]), 1)).rejects.toThrow(
      /signing key not loaded/,
    );
  });
});
