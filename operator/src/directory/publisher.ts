import type { Logger } from 'pino';
import { ConfigMapSchema, type ConfigMap } from '../api/core.js';
import {
  DIRECTORY_HASH_ANNOTATION,
  DIRECTORY_LABEL,
  directoryConfigMapName,
  directoryFileName,
} from '../api/directory.js';
import { objectKey } from '../api/meta.js';
import { errorMessage, isApiError } from '../errors.js';
import type { KubeClient } from '../kube/client.js';
import { Resources, resourcePath } from '../kube/resources.js';
import type { Store } from '../kube/store.js';
import type { ShardContent } from './build.js';

export interface PublishResult {
  created: number;
  updated: number;
  deleted: number;
  unchanged: number;
}

/**
 * Writes directory shards as ConfigMaps. Each ConfigMap carries the sha256 of its content in an
 * annotation; a shard is written only when the desired hash differs from the one in the informer
 * cache (or the one this process last wrote), so an unchanged directory costs no request at all,
 * and a change to one pod costs one write per namespace view that contains it.
 */
export class DirectoryPublisher {
  /** key "ns/name" -> hash this process last wrote (covers the gap until the watch delivers it). */
  private readonly written = new Map<string, string>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly client: KubeClient,
    private readonly cache: Store<ConfigMap>,
    private readonly log: Logger,
    private readonly concurrency = 8,
  ) {}

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
    for (const [ns, contents] of views) {
      for (const c of contents) {
        const name = directoryConfigMapName(c.shard);
        const key = `${ns}/${name}`;
        const cached = this.cache.get(key);
        const cachedHash = cached?.metadata.annotations?.[DIRECTORY_HASH_ANNOTATION];
        const known = this.written.get(key);
        if ((known ?? cachedHash) === c.hash && (cached || known)) {
          result.unchanged++;
          continue;
        }
        jobs.push(async () => {
          const body = {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: {
              name,
              namespace: ns,
              labels: { [DIRECTORY_LABEL]: 'true', 'app.kubernetes.io/managed-by': 'smc-operator' },
              annotations: { [DIRECTORY_HASH_ANNOTATION]: c.hash },
            },
            data: { [directoryFileName(c.shard)]: c.json },
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
            this.written.set(key, c.hash);
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
