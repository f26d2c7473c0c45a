import { objectKey, type ObjectMeta } from '../api/meta.js';

export interface HasMeta {
  readonly metadata: ObjectMeta;
}

/** An in-memory cache of objects by key ("ns/name" or "name"), with a per-namespace index. */
export class Store<T extends HasMeta> {
  private readonly items = new Map<string, T>();
  private readonly byNamespace = new Map<string, Map<string, T>>();

  get size(): number {
    return this.items.size;
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  list(): IterableIterator<T> {
    return this.items.values();
  }

  keys(): IterableIterator<string> {
    return this.items.keys();
  }

  /** Objects of one namespace (empty for none). */
  inNamespace(namespace: string): Iterable<T> {
    return this.byNamespace.get(namespace)?.values() ?? [];
  }

  namespaces(): IterableIterator<string> {
    return this.byNamespace.keys();
  }

  /** Inserts or replaces; returns the previous object. */
  set(obj: T): T | undefined {
    const key = objectKey(obj.metadata);
    const old = this.items.get(key);
    this.items.set(key, obj);
    const ns = obj.metadata.namespace ?? '';
    let idx = this.byNamespace.get(ns);
    if (!idx) this.byNamespace.set(ns, (idx = new Map()));
    idx.set(key, obj);
    return old;
  }

  delete(key: string): T | undefined {
    const old = this.items.get(key);
    if (!old) return undefined;
    this.items.delete(key);
    const ns = old.metadata.namespace ?? '';
    const idx = this.byNamespace.get(ns);
    idx?.delete(key);
    if (idx && idx.size === 0) this.byNamespace.delete(ns);
    return old;
  }
}
