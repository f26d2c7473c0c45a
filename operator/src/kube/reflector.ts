import type { Logger } from 'pino';
import type { z } from 'zod';
import { ListSchema, StatusSchema, WatchEventSchema, objectKey } from '../api/meta.js';
import { Backoff } from '../controller/backoff.js';
import { sleep } from '../controller/clock.js';
import { ApiError, errorMessage } from '../errors.js';
import type { KubeClient, Query } from './client.js';
import { resourcePath, type ResourceType } from './resources.js';
import { Store, type HasMeta } from './store.js';

export interface ListPage {
  readonly items: unknown[];
  readonly resourceVersion: string;
  readonly continue?: string | undefined;
}

export type RawWatchEvent = z.infer<typeof WatchEventSchema>;

/** The two calls a reflector needs; KubeClient-backed in production, faked in unit tests. */
export interface ListerWatcher {
  list(opts: { limit: number; continue?: string | undefined }): Promise<ListPage>;
  /** Streams events from `resourceVersion` until the server ends the watch (resolve) or it fails (reject). */
  watch(resourceVersion: string, onEvent: (e: RawWatchEvent) => void, signal: AbortSignal): Promise<void>;
}

export interface ReflectorHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, obj: T): void;
  onDelete?(obj: T): void;
}

export interface ReflectorStats {
  lists: number;
  watches: number;
  relistsOnGone: number;
  invalidObjects: number;
  events: number;
}

/** Thrown inside a watch when the server reports 410 Gone (as HTTP status or as an ERROR event). */
class GoneError extends Error {}

/**
 * Keeps a Store in sync with one kind of object: list (paginated), then watch from the list's
 * resourceVersion; every event advances the resourceVersion (bookmarks included) so a dropped
 * watch resumes where it stopped. On 410 Gone the reflector lists again and turns the difference
 * between store and list into add/update/delete callbacks. Other failures retry with jittered
 * exponential backoff. Every object is validated with zod; an invalid one is logged and skipped.
 */
export class Reflector<T extends HasMeta> {
  readonly store = new Store<T>();
  readonly stats: ReflectorStats = { lists: 0, watches: 0, relistsOnGone: 0, invalidObjects: 0, events: 0 };
  private resourceVersion: string | undefined;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private syncedResolve: (() => void) | undefined;
  private readonly syncedPromise: Promise<void>;
  private isSynced = false;
  private readonly backoff: Backoff;
  /** Called after every change of the store size. */
  onSize: ((n: number) => void) | undefined;

  constructor(
    readonly name: string,
    private readonly lw: ListerWatcher,
    private readonly schema: z.ZodType<T>,
    private readonly handlers: ReflectorHandlers<T>,
    private readonly log: Logger,
    opts: { backoffBaseMs?: number; backoffMaxMs?: number; pageSize?: number } = {},
  ) {
    this.backoff = new Backoff(opts.backoffBaseMs ?? 200, opts.backoffMaxMs ?? 5_000);
    this.pageSize = opts.pageSize ?? 500;
    this.syncedPromise = new Promise((r) => (this.syncedResolve = r));
  }
  private readonly pageSize: number;

  get synced(): boolean {
    return this.isSynced;
  }

  get lastResourceVersion(): string | undefined {
    return this.resourceVersion;
  }

  /** Resolves after the first complete list has been applied to the store. */
  waitForSync(): Promise<void> {
    return this.syncedPromise;
  }

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      if (this.resourceVersion === undefined) {
        try {
          await this.relist();
          this.backoff.reset();
        } catch (e) {
          const d = this.backoff.next();
          this.log.warn({ reflector: this.name, err: errorMessage(e), retryMs: d }, 'list failed');
          await sleep(d, signal);
          continue;
        }
      }
      const rv = this.resourceVersion;
      if (rv === undefined) continue;
      if (signal.aborted) break;
      try {
        this.stats.watches++;
        await this.lw.watch(rv, (ev) => this.onEvent(ev), signal);
        // The server closed the watch normally (timeout): resume from the last resourceVersion.
        this.backoff.reset();
      } catch (e) {
        if (signal.aborted) break;
        if (e instanceof GoneError || (e instanceof ApiError && e.gone)) {
          this.log.info({ reflector: this.name, resourceVersion: rv }, 'watch expired (410 Gone); relisting');
          this.stats.relistsOnGone++;
          this.resourceVersion = undefined;
          continue;
        }
        const d = this.backoff.next();
        this.log.warn({ reflector: this.name, err: errorMessage(e), retryMs: d }, 'watch failed; resuming');
        await sleep(d, signal);
      }
    }
  }

  private parse(raw: unknown): T | undefined {
    const r = this.schema.safeParse(raw);
    if (r.success) return r.data;
    this.stats.invalidObjects++;
    this.log.warn({ reflector: this.name, err: r.error.message.slice(0, 500) }, 'skipping invalid object');
    return undefined;
  }

  private async relist(): Promise<void> {
    this.stats.lists++;
    const fresh = new Map<string, T>();
    let cont: string | undefined;
    let rv: string;
    do {
      const page = await this.lw.list({ limit: this.pageSize, continue: cont });
      for (const raw of page.items) {
        const obj = this.parse(raw);
        if (obj) fresh.set(objectKey(obj.metadata), obj);
      }
      cont = page.continue || undefined;
      rv = page.resourceVersion;
    } while (cont);
    // Apply the difference between the cache and the list.
    for (const key of [...this.store.keys()]) {
      if (!fresh.has(key)) {
        const old = this.store.delete(key);
        if (old) this.handlers.onDelete?.(old);
      }
    }
    for (const obj of fresh.values()) {
      const old = this.store.set(obj);
      if (!old) this.handlers.onAdd?.(obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion)
        this.handlers.onUpdate?.(old, obj);
    }
    this.resourceVersion = rv;
    this.onSize?.(this.store.size);
    this.log.debug({ reflector: this.name, objects: fresh.size, resourceVersion: rv }, 'listed');
    if (!this.isSynced) {
      this.isSynced = true;
      this.syncedResolve?.();
    }
  }

  private onEvent(ev: RawWatchEvent): void {
    this.stats.events++;
    if (ev.type === 'ERROR') {
      const st = StatusSchema.safeParse(ev.object);
      if (st.success && st.data.code === 410) throw new GoneError('410 Gone');
      throw new Error(`watch error event: ${st.success ? st.data.message : 'unknown'}`);
    }
    const meta = (ev.object as { metadata?: { resourceVersion?: unknown } } | null)?.metadata;
    const rv = typeof meta?.resourceVersion === 'string' ? meta.resourceVersion : undefined;
    if (ev.type === 'BOOKMARK') {
      if (rv) this.resourceVersion = rv;
      return;
    }
    const obj = this.parse(ev.object);
    if (rv) this.resourceVersion = rv;
    if (!obj) return;
    const key = objectKey(obj.metadata);
    if (ev.type === 'DELETED') {
      const old = this.store.delete(key);
      this.handlers.onDelete?.(old ?? obj);
    } else {
      const old = this.store.set(obj);
      if (old) this.handlers.onUpdate?.(old, obj);
      else this.handlers.onAdd?.(obj);
    }
    this.onSize?.(this.store.size);
  }
}

/** A ListerWatcher over the API server for one resource, optionally filtered. */
export function apiListerWatcher(
  client: KubeClient,
  rt: ResourceType,
  opts: { namespace?: string; labelSelector?: string; fieldSelector?: string; timeoutSeconds?: number } = {},
): ListerWatcher {
  const path = resourcePath(rt, opts.namespace);
  const filters: Query = { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector };
  return {
    async list({ limit, continue: cont }) {
      const res = await client.request('GET', path, ListSchema, {
        query: { ...filters, limit, continue: cont },
        timeoutMs: 120_000,
      });
      return {
        items: res.items,
        resourceVersion: res.metadata.resourceVersion ?? '',
        continue: res.metadata.continue,
      };
    },
    watch(resourceVersion, onEvent, signal) {
      const timeoutSeconds = opts.timeoutSeconds ?? 300 + Math.floor(Math.random() * 300);
      return client.watch(
        path,
        { ...filters, resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
        (line) => {
          const ev = WatchEventSchema.safeParse(line);
          if (!ev.success) throw new Error(`malformed watch event: ${ev.error.message.slice(0, 200)}`);
          onEvent(ev.data);
        },
        signal,
      );
    },
  };
}
