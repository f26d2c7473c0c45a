import { EventEmitter } from 'node:events';
import { type FSWatcher, watch } from 'node:fs';
import { dirname } from 'node:path';
import { stat } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { EndpointDirectory } from './endpoint-directory.js';
import { directoryFingerprint, readDirectory } from './read.js';

export interface DirectoryWatcherOptions {
  path: string;
  pollIntervalMs: number;
  log: Logger;
  /** Coalesces bursts of fs events (a rename is several). */
  debounceMs?: number;
}

interface DirectoryWatcherEvents {
  change: [EndpointDirectory];
  error: [Error];
}

/**
 * Keeps the latest valid directory. Watches the folder that holds the data
 * (so atomic renames and projected-volume symlink swaps are seen) and also
 * polls a stat fingerprint, since inotify misses changes on some volumes. A
 * document that fails to parse is logged and the previous snapshot kept.
 */
export class DirectoryWatcher extends EventEmitter<DirectoryWatcherEvents> {
  private current = EndpointDirectory.empty();
  private fingerprint = '';
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
    const fingerprint = await directoryFingerprint(this.opts.path);
    if (this.loaded && fingerprint === this.fingerprint) return;
    try {
      const next = await readDirectory(this.opts.path);
      this.fingerprint = fingerprint;
      this.current = next;
      this.loaded = true;
      this.opts.log.info({ path: this.opts.path, endpoints: next.size }, 'endpoint directory loaded');
      this.emit('change', next);
    } catch (err) {
      // Remember the fingerprint so a broken file is reported once, not on every poll.
      this.fingerprint = fingerprint;
      const error = err instanceof Error ? err : new Error(String(err));
      this.opts.log.warn(
        { err: error, path: this.opts.path },
        'endpoint directory not loaded; keeping the previous one',
      );
      if (this.listenerCount('error') > 0) this.emit('error', error);
    }
  }
}
