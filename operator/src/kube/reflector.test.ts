import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ObjectMetaSchema } from '../api/meta.js';
import { ApiError } from '../errors.js';
import { Reflector, type ListPage, type ListerWatcher, type RawWatchEvent } from './reflector.js';

const Obj = z.object({ metadata: ObjectMetaSchema, v: z.number() });
type Obj = z.infer<typeof Obj>;
const o = (name: string, rv: string, v = 0): Obj => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv },
  v,
});

type WatchScript = (rv: string, emit: (e: RawWatchEvent) => void) => Promise<void>;

/** A scripted lister/watcher: each list returns the next state, each watch runs the next script. */
class FakeLW implements ListerWatcher {
  lists: { limit: number; continue?: string | undefined }[] = [];
  watches: string[] = [];
  constructor(
    private readonly listResults: ListPage[][],
    private readonly scripts: WatchScript[],
  ) {}
  private pages: ListPage[] = [];
  async list(opts: { limit: number; continue?: string | undefined }): Promise<ListPage> {
    this.lists.push(opts);
    if (!opts.continue) this.pages = [...(this.listResults.shift() ?? [])];
    const p = this.pages.shift();
    if (!p) throw new Error('no more lists');
    return p;
  }
  async watch(rv: string, onEvent: (e: RawWatchEvent) => void, signal: AbortSignal): Promise<void> {
    this.watches.push(rv);
    const s = this.scripts.shift();
    if (!s) {
      if (signal.aborted) return;
      await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
      return;
    }
    await s(rv, onEvent);
  }
}

const log = pino({ level: 'silent' });

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
}

function record() {
  const events: string[] = [];
  return {
    events,
    handlers: {
      onAdd: (x: Obj) => events.push(`add ${x.metadata.name}@${x.metadata.resourceVersion}`),
      onUpdate: (_a: Obj, b: Obj) => events.push(`update ${b.metadata.name}@${b.metadata.resourceVersion}`),
      onDelete: (x: Obj) => events.push(`delete ${x.metadata.name}`),
    },
  };
}

describe('Reflector', () => {
  it('lists page by page, then watches from the list resourceVersion', async () => {
    const lw = new FakeLW(
      [
        [
          { items: [o('a', '1')], resourceVersion: '10', continue: 'c1' },
          { items: [o('b', '2')], resourceVersion: '10' },
        ],
      ],
      [],
    );
    const { events, handlers } = record();
    const r = new Reflector('t', lw, Obj, handlers, log, { pageSize: 1 });
    r.start();
    await r.waitForSync();
    await until(() => lw.watches.length === 1);
    expect(lw.lists).toEqual([
      { limit: 1, continue: undefined },
      { limit: 1, continue: 'c1' },
    ]);
    expect(lw.watches).toEqual(['10']);
    expect(events).toEqual(['add a@1', 'add b@2']);
    await r.stop();
  });

  it('resumes a closed watch from the last event or bookmark resourceVersion, without relisting', async () => {
    const lw = new FakeLW(
      [[{ items: [], resourceVersion: '5' }]],
      [
        async (_rv, emit) => {
          emit({ type: 'ADDED', object: o('a', '6') });
          emit({ type: 'MODIFIED', object: o('a', '7', 1) });
        },
        async (_rv, emit) => {
          emit({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '9' } } });
        },
        async () => {
          throw new Error('connection reset');
        },
        async (_rv, emit) => {
          emit({ type: 'DELETED', object: o('a', '11', 1) });
        },
      ],
    );
    const { events, handlers } = record();
    const r = new Reflector('t', lw, Obj, handlers, log, { backoffBaseMs: 1, backoffMaxMs: 2 });
    r.start();
    await until(() => lw.watches.length === 5);
    expect(lw.watches).toEqual(['5', '7', '9', '9', '11']);
    expect(lw.lists.length).toBe(1);
    expect(events).toEqual(['add a@6', 'update a@7', 'delete a']);
    expect(r.store.size).toBe(0);
    await r.stop();
  });

  it('relists on 410 Gone (ERROR event or HTTP status) and turns the difference into events', async () => {
    const lw = new FakeLW(
      [
        [{ items: [o('a', '1'), o('b', '2'), o('c', '3')], resourceVersion: '3' }],
        [{ items: [o('a', '1'), o('b', '8', 1), o('d', '9')], resourceVersion: '20' }],
        [{ items: [o('a', '1')], resourceVersion: '30' }],
      ],
      [
        async (_rv, emit) => {
          emit({
            type: 'ERROR',
            object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' },
          });
        },
        async () => {
          throw new ApiError('WATCH', '/x', 410, 'Gone', 'too old');
        },
      ],
    );
    const { events, handlers } = record();
    const r = new Reflector('t', lw, Obj, handlers, log);
    r.start();
    await until(() => lw.watches.length === 3);
    expect(lw.watches).toEqual(['3', '20', '30']);
    expect(r.stats.relistsOnGone).toBe(2);
    expect(events).toEqual([
      'add a@1',
      'add b@2',
      'add c@3',
      'delete c',
      'update b@8',
      'add d@9',
      'delete b',
      'delete d',
    ]);
    expect([...r.store.keys()]).toEqual(['ns/a']);
    await r.stop();
  });

  it('skips objects that fail validation', async () => {
    const lw = new FakeLW(
      [[{ items: [o('a', '1'), { metadata: { name: 'bad' }, v: 'x' }], resourceVersion: '2' }]],
      [
        async (_rv, emit) => {
          emit({ type: 'ADDED', object: { metadata: {} } });
        },
      ],
    );
    const r = new Reflector('t', lw, Obj, {}, log);
    r.start();
    await until(() => lw.watches.length === 2);
    expect(r.store.size).toBe(1);
    expect(r.stats.invalidObjects).toBe(2);
    await r.stop();
  });

  it('retries a failing list with backoff', async () => {
    let calls = 0;
    const lw: ListerWatcher = {
      async list() {
        if (++calls < 3) throw new Error('apiserver down');
        return { items: [], resourceVersion: '1' };
      },
      watch: (_rv, _e, signal) =>
        new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r()))),
    };
    const r = new Reflector('t', lw, Obj, {}, log, { backoffBaseMs: 1, backoffMaxMs: 2 });
    r.start();
    await r.waitForSync();
    expect(calls).toBe(3);
    expect(r.lastResourceVersion).toBe('1');
    await r.stop();
  });
});
