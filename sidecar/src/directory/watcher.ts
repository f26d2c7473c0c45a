import { EventEmitter } from 'node:events';
import { type FSWatcher, watch } from 'node:fs';
import { dirname } from 'node:path';
import { readFile, stat } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { EndpointDirectory } from './endpoint-directory.js';
import { DirectoryError } from './errors.js';
import { directoryFiles, directoryFingerprint } from './read.js';
import type { SidecarConfig } from '../config/schema.js';
import {
  DirectoryRejection,
  UNVERIFIED,
  acceptShard,
  directoryTrust,
  verifying,
  type AcceptedShard,
  type DirectoryRejectReason,
  type DirectoryTrust,
} from './verify.js';

export interface DirectoryWatcherOptions {
  path: string;
  pollIntervalMs: number;
  log: Logger;
  /** Coalesces bursts of fs events (a rename is several). */
  debounceMs?: number;
  /** Keys and namespace the shards must be signed for (default: none, shards read unchecked). */
  trust?: DirectoryTrust;
}

interface DirectoryWatcherEvents {
  change: [EndpointDirectory];
  error: [Error];
  /** A shard file was refused (its previous accepted version, if any, stays in use). */
  rejected: [{ file: string; reason: DirectoryRejectReason; message: string }];
}

/**
 * Keeps the latest valid directory. Watches the folder that holds the data
 * (so atomic renames and projected-volume symlink swaps are seen) and also
 * polls a stat fingerprint, since inotify misses changes on some volumes.
 * Each shard file is checked on its own (verify.ts: JSON, schema and, with
 * keys, the operator's signature, the namespace and the issue time); a file
 * that fails is logged (warn), reported as `rejected`, and its previous
 * accepted version kept, so a tampered shard changes nothing this sidecar
 * believes while the other shards still update.
 */
export class DirectoryWatcher extends EventEmitter<DirectoryWatcherEvents> {
  private current = EndpointDirectory.empty();
  /** file path -> its last accepted version. */
  private accepted = new Map<string, AcceptedShard>();
  /** file path -> the content last refused (reported once, not on every read). */
  private refused = new Map<string, string>();
  /** A file-system event asked for this read: read even if the stat fingerprint looks the same. */
  private forceNext = false;
  private fingerprint: string | null = null;
  private fsWatcher: FSWatcher | null = null;
  private poller: NodeJS.Timeout | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private reloading: Promise<void> | null = null;
  private again = false;
  private loaded = false;
  private stopped = false;

  constructor(private readonly opts: DirectoryWatcherOptions) {
    super();
  }

  get directory(): EndpointDirectory {
    return this.current;
  }

  /** Whether at least one valid directory has been read. */
  get ready(): boolean {
    return this.loaded;
  }

  /** Reads once (a missing or bad directory is logged, not thrown) and starts watching. */
  async start(): Promise<void> {
    await this.reload();
    await this.startFsWatch();
    this.poller = setInterval(() => void this.poll(), this.opts.pollIntervalMs);
    this.poller.unref();
  }

  stop(): void {
    this.stopped = true;
    this.fsWatcher?.close();
    this.fsWatcher = null;
    if (this.poller !== null) clearInterval(this.poller);
    if (this.debounce !== null) clearTimeout(this.debounce);
  }

  private async startFsWatch(): Promise<void> {
    let target = this.opts.path;
    try {
      if (!(await stat(target)).isDirectory()) target = dirname(target);
    } catch {
      target = dirname(target);
    }
    try {
      this.fsWatcher = watch(target, { persistent: false }, () => this.schedule());
      this.fsWatcher.on('error', (err) => {
        this.opts.log.warn({ err, path: target }, 'directory fs.watch failed; relying on polling');
        this.fsWatcher?.close();
        this.fsWatcher = null;
      });
    } catch (err) {
      this.opts.log.warn({ err, path: target }, 'cannot fs.watch the directory; relying on polling');
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.debounce !== null) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      // The fingerprint can miss a quick rewrite (a reused inode, the same size, a coarse mtime).
      this.forceNext = true;
      void this.reload();
    }, this.opts.debounceMs ?? 50);
    this.debounce.unref();
  }

  private async poll(): Promise<void> {
    if (this.stopped) return;
    if ((await directoryFingerprint(this.opts.path)) !== this.fingerprint) await this.reload();
  }

  /** Serialised reload; a request arriving during one triggers exactly one more. */
  reload(): Promise<void> {
    if (this.reloading !== null) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.again = false;
        await this.reloadOnce();
      } while (this.again && !this.stopped);
      this.reloading = null;
    })();
    return this.reloading;
  }

  private async reloadOnce(): Promise<void> {
    const force = this.forceNext;
    this.forceNext = false;
    const fingerprint = await directoryFingerprint(this.opts.path);
    // Polling, and nothing changed on disk since the last read (loaded or not): nothing to do.
    if (!force && fingerprint === this.fingerprint) return;
    // Remember the fingerprint so a broken file is reported once, not on every poll.
    this.fingerprint = fingerprint;
    const trust = this.opts.trust ?? UNVERIFIED;
    try {
      const files = await directoryFiles(this.opts.path);
      let texts: string[];
      try {
        texts = await Promise.all(files.map((f) => readFile(f, 'utf8')));
      } catch (err) {
        throw new DirectoryError(this.opts.path, 'cannot read', { cause: err });
      }
      const next = new Map<string, AcceptedShard>();
      const refused = new Map<string, string>();
      let rejected = 0;
      let changed = files.length !== this.accepted.size;
      files.forEach((file, i) => {
        const text = texts[i] ?? '';
        const previous = this.accepted.get(file);
        if (previous?.text === text) {
          next.set(file, previous);
          return;
        }
        if (this.refused.get(file) === text) {
          // Refused before and reported then.
          rejected++;
          refused.set(file, text);
          if (previous) next.set(file, previous);
          return;
        }
        try {
          next.set(file, acceptShard(file, text, trust, previous));
          changed = true;
        } catch (err) {
          if (!(err instanceof DirectoryRejection)) throw err;
          rejected++;
          refused.set(file, text);
          if (previous) next.set(file, previous);
          else changed = true;
          this.opts.log.warn(
            { err, path: file, reason: err.reason, kept: previous !== undefined },
            'endpoint directory shard rejected; keeping the previous version of it',
          );
          this.emit('rejected', { file, reason: err.reason, message: err.message });
          if (this.listenerCount('error') > 0) this.emit('error', err);
        }
      });
      this.accepted = next;
      this.refused = refused;
      if (rejected > 0 && !this.loaded && next.size < files.length) return;
      if (!changed && this.loaded) return;
      const endpoints = [...next.values()].flatMap((s) => s.doc.endpoints);
      this.current = new EndpointDirectory(endpoints);
      this.loaded = true;
      this.opts.log.info(
        { path: this.opts.path, endpoints: this.current.size, shards: next.size, rejected },
        'endpoint directory loaded',
      );
      this.emit('change', this.current);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.opts.log.warn(
        { err: error, path: this.opts.path },
        'endpoint directory not loaded; keeping the previous one',
      );
      if (this.listenerCount('error') > 0) this.emit('error', error);
    }
  }
}

/**
 * The watcher of a sidecar configuration's directory, checking shards with its keys and namespace
 * (the sidecar and `smc intercept sync` read the same directory the same way).
 */
export function directoryWatcherFor(cfg: SidecarConfig, log: Logger): DirectoryWatcher {
  const trust = directoryTrust(cfg.directory.publicKeys, cfg.directory.namespace);
  if (!verifying(trust)) log.warn('directory.publicKeys is empty: directory signatures are not checked');
  return new DirectoryWatcher({
    path: cfg.directory.path,
    pollIntervalMs: cfg.directory.pollIntervalMs,
    log: log.child({ component: 'directory' }),
    trust,
  });
}
