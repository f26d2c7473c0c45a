import type { Logger } from 'pino';
import { z } from 'zod';
import { ConfigMapSchema, type ConfigMap } from '../api/core.js';
import {
  DIRECTORY_HASH_ANNOTATION,
  DIRECTORY_LABEL,
  directoryConfigMapName,
  directoryFileName,
} from '../api/directory.js';
import { signDocument, signatureProblem, type DirectorySigningKey } from '../api/directory-signature.js';
import { ListSchema, objectKey } from '../api/meta.js';
import { errorMessage, isApiError } from '../errors.js';
import type { KubeClient } from '../kube/client.js';
import { Resources, resourcePath } from '../kube/resources.js';
import { hashContent, type ShardContent } from './build.js';

/** What the publisher reads of the directory ConfigMaps the operator watches (a Store, or several). */
export interface DirectoryCache {
  get(key: string): ConfigMap | undefined;
  list(): Iterable<ConfigMap>;
  delete(key: string): ConfigMap | undefined;
}

export interface PublishResult {
  created: number;
  updated: number;
  deleted: number;
  unchanged: number;
}

/**
 * Writes directory shards as ConfigMaps, each signed with the operator's key (issuedAt, keyId and
 * signature added to the document). Each ConfigMap carries a hash of its content and key in an
 * annotation; a shard is written only when the desired hash differs from the one in the informer
 * cache (or the one this process last wrote), so an unchanged directory costs no request at all,
 * and a change to one pod costs one write per namespace view that contains it. A new signing key
 * changes every hash, so every shard is signed again.
 */
export class DirectoryPublisher {
  /** key "ns/name" -> hash this process last wrote (covers the gap until the watch delivers it). */
  private readonly written = new Map<string, string>();
  /** key "ns/name" -> issuedAt this process last wrote. */
  private readonly issued = new Map<string, number>();
  private chain: Promise<unknown> = Promise.resolve();
  private key: DirectorySigningKey | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly cache: DirectoryCache,
    private readonly log: Logger,
    private readonly concurrency = 8,
    private readonly now: () => number = Date.now,
  ) {}

  /** Sets the key that signs every shard written from now on (required before publish). */
  useSigningKey(key: DirectorySigningKey): void {
    this.key = key;
  }

  /** The annotation value for a shard: sha256 over the signing key id and the unsigned content. */
  private desiredHash(c: ShardContent, key: DirectorySigningKey): string {
    return hashContent(`${key.keyId}\n${c.hash}`);
  }

  /**
   * A shard's issuedAt: now, but always later than the one it replaces if this key signed that
   * one (the sidecars refuse to go back in time, so a leader whose clock lags must not be refused;
   * a value someone else wrote is ignored, the sidecars never accepted it).
   */
  private issuedAt(
    key: string,
    cached: ConfigMap | undefined,
    file: string,
    signingKey: DirectorySigningKey,
  ): number {
    let last = this.issued.get(key) ?? 0;
    const text = cached?.data?.[file];
    if (text) {
      try {
        const doc: unknown = JSON.parse(text);
        const v = (doc as { issuedAt?: unknown } | null)?.issuedAt;
        const ours = signatureProblem(doc, new Map([[signingKey.keyId, signingKey.verifyKey]])) === null;
        if (ours && typeof v === 'number' && Number.isSafeInteger(v)) last = Math.max(last, v);
      } catch {
        // not JSON: nothing to stay ahead of
      }
    }
    return Math.max(this.now(), last + 1);
  }

  /** The hash the named ConfigMap has, as far as this process knows. */
  currentHash(key: string): string | undefined {
    const cm = this.cache.get(key);
    const cached = cm?.metadata.annotations?.[DIRECTORY_HASH_ANNOTATION];
    return this.written.get(key) ?? cached;
  }

  /** Whether a ConfigMap event is just the echo of our own write (nothing to do). */
  isOwnWrite(cm: ConfigMap): boolean {
    const key = objectKey(cm.metadata);
    const h = this.written.get(key);
    return h !== undefined && h === cm.metadata.annotations?.[DIRECTORY_HASH_ANNOTATION];
  }

  /** Forgets what we wrote for a key (e.g. after someone else changed or deleted it). */
  invalidate(key: string): void {
    this.written.delete(key);
  }

  /**
   * The largest shard count a cached shard was written with (before --directory-shards was
   * lowered, the old count): read from the start of the document, `{"version":1,"shard":i,"shards":n`.
   */
  shardCountSeen(): number {
    let n = 0;
    for (const cm of this.cache.list()) {
      for (const text of Object.values(cm.data ?? {})) {
        const m = /^\{"version":\d+,"shard":\d+,"shards":(\d+)[,}]/.exec(text.slice(0, 80));
        if (m) n = Math.max(n, Number(m[1]));
      }
    }
    return n;
  }

  /**
   * Deletes directory ConfigMaps of shard indexes `from` .. `to - 1` in every namespace (left over
   * after --directory-shards was lowered; the reflectors watch only the current shards). One list
   * per index, by name and label (served from the API server's watch cache), which the operator's
   * RBAC allows for exactly these names.
   */
  async sweepShards(from: number, to: number): Promise<number> {
    let deleted = 0;
    const Item = z.object({ metadata: z.object({ name: z.string(), namespace: z.string().optional() }) });
    for (let i = from; i < to; i++) {
      const name = directoryConfigMapName(i);
      const list = await this.client.request('GET', resourcePath(Resources.configmaps), ListSchema, {
        query: {
          fieldSelector: `metadata.name=${name}`,
          labelSelector: `${DIRECTORY_LABEL}=true`,
          resourceVersion: '0',
        },
      });
      for (const raw of list.items) {
        const item = Item.safeParse(raw);
        const ns = item.success ? item.data.metadata.namespace : undefined;
        if (!ns) continue;
        try {
          await this.client.requestRaw('DELETE', resourcePath(Resources.configmaps, ns, name));
          deleted++;
        } catch (e) {
          if (!isApiError(e, 404)) throw e;
        }
      }
    }
    if (deleted > 0) this.log.info({ deleted, from, to }, 'directory shards beyond the shard count deleted');
    return deleted;
  }

  /** Publishes the views; serialised so two syncs never interleave. */
  publish(views: ReadonlyMap<string, readonly ShardContent[]>, shards: number): Promise<PublishResult> {
    const run = this.chain.then(() => this.doPublish(views, shards));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async doPublish(
    views: ReadonlyMap<string, readonly ShardContent[]>,
    shards: number,
  ): Promise<PublishResult> {
    const result: PublishResult = { created: 0, updated: 0, deleted: 0, unchanged: 0 };
    const jobs: (() => Promise<void>)[] = [];
    const signingKey = this.key;
    if (!signingKey) throw new Error('directory signing key not loaded');
    for (const [ns, contents] of views) {
      for (const c of contents) {
        const name = directoryConfigMapName(c.shard);
        const key = `${ns}/${name}`;
        const cached = this.cache.get(key);
        const cachedHash = cached?.metadata.annotations?.[DIRECTORY_HASH_ANNOTATION];
        const known = this.written.get(key);
        const hash = this.desiredHash(c, signingKey);
        if ((known ?? cachedHash) === hash && (cached || known)) {
          result.unchanged++;
          continue;
        }
        jobs.push(async () => {
          const file = directoryFileName(c.shard);
          const issuedAt = this.issuedAt(key, cached, file, signingKey);
          const { version, shard, shards, endpoints } = c.doc;
          const doc = { version, shard, shards, namespace: ns, issuedAt, endpoints };
          const body = {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: {
              name,
              namespace: ns,
              labels: { [DIRECTORY_LABEL]: 'true', 'app.kubernetes.io/managed-by': 'smc-operator' },
              annotations: { [DIRECTORY_HASH_ANNOTATION]: hash },
            },
            data: { [file]: signDocument(doc, signingKey) },
          };
          const path = resourcePath(Resources.configmaps, ns, name);
          try {
            if (cached || known) {
              await this.client.request('PUT', path, ConfigMapSchema, { body });
              result.updated++;
            } else {
              try {
                await this.client.request('POST', resourcePath(Resources.configmaps, ns), ConfigMapSchema, {
                  body,
                });
                result.created++;
              } catch (e) {
                if (!isApiError(e, 409)) throw e;
                await this.client.request('PUT', path, ConfigMapSchema, { body });
                result.updated++;
              }
            }
            this.written.set(key, hash);
            this.issued.set(key, issuedAt);
          } catch (e) {
            if (isApiError(e, 404)) {
              // Deleted meanwhile (or the namespace is going away): create on the next sync.
              this.written.delete(key);
            }
            throw e;
          }
        });
      }
    }
    // ConfigMaps of namespaces without a view any more, or of shards beyond the shard count.
    for (const cm of this.cache.list()) {
      const ns = cm.metadata.namespace ?? '';
      const m = /^smc-directory-(\d+)$/.exec(cm.metadata.name);
      if (!m) continue;
      const shard = Number(m[1]);
      if (views.has(ns) && shard < shards) continue;
      const key = objectKey(cm.metadata);
      jobs.push(async () => {
        try {
          await this.client.requestRaw('DELETE', resourcePath(Resources.configmaps, ns, cm.metadata.name));
        } catch (e) {
          if (!isApiError(e, 404)) throw e;
        }
        this.written.delete(key);
        this.issued.delete(key);
        this.cache.delete(key);
        result.deleted++;
      });
    }
    const errors: unknown[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < jobs.length) {
        const job = jobs[next++];
        if (!job) break;
        try {
          await job();
        } catch (e) {
          errors.push(e);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, jobs.length) }, worker));
    if (errors.length > 0) {
      this.log.warn(
        { errors: errors.length, first: errorMessage(errors[0]) },
        'directory publish incomplete',
      );
      throw errors[0];
    }
    if (result.created + result.updated + result.deleted > 0) {
      this.log.info(result, 'directory published');
    }
    return result;
  }
}

/** One cache over the per-shard reflectors' stores (smc-directory-<i> is in store i). */
export function directoryCache(reflectors: readonly { readonly store: DirectoryCache }[]): DirectoryCache {
  const storeOf = (key: string): DirectoryCache | undefined => {
    const m = /\/smc-directory-(\d+)$/.exec(key);
    return m ? reflectors[Number(m[1])]?.store : undefined;
  };
  return {
    get: (key) => storeOf(key)?.get(key),
    list: () => reflectors.flatMap((r) => [...r.store.list()]),
    delete: (key) => storeOf(key)?.delete(key),
  };
}
