import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import type { TlsMaterial } from './certmanager.js';

export interface CertFileOptions {
  /** Directory holding tls.crt (the serving certificate, possibly followed by its chain) and tls.key. */
  readonly dir: string;
  /** Names the certificate should cover; one it does not cover is logged, and served all the same. */
  readonly hosts: readonly string[];
  /** Re-read the files at least this often, whatever the watch reports. */
  readonly pollIntervalMs: number;
}

/** What the directory holds, checked: a certificate, the key that belongs to it, and when it ends. */
export interface LoadedCert extends TlsMaterial {
  readonly notAfter: Date;
  readonly serialNumber: string;
}

/**
 * Reads and checks tls.crt and tls.key (and ca.crt when present) from `dir`. Throws when a file
 * is missing, does not parse, or the key is not the certificate's: e.g. a pair read while it is
 * being replaced.
 */
export function loadCertDir(dir: string): LoadedCert {
  const certPem = readFileSync(join(dir, 'tls.crt'), 'utf8');
  const keyPem = readFileSync(join(dir, 'tls.key'), 'utf8');
  let caBundlePem = '';
  try {
    caBundlePem = readFileSync(join(dir, 'ca.crt'), 'utf8');
  } catch {
    // ca.crt is optional: the API server's caBundle comes from cert-manager's cainjector.
  }
  // The first certificate of the file is the serving one (cert-manager appends the chain).
  const cert = new X509Certificate(certPem);
  const key = createPrivateKey(keyPem);
  if (!cert.checkPrivateKey(key)) throw new Error(`${dir}/tls.key is not the key of ${dir}/tls.crt`);
  return {
    certPem,
    keyPem,
    caBundlePem,
    notAfter: new Date(cert.validTo),
    serialNumber: cert.serialNumber,
  };
}

/** The hosts the certificate does not cover. */
export function uncoveredHosts(certPem: string, hosts: readonly string[]): string[] {
  const cert = new X509Certificate(certPem);
  return hosts.filter((h) => (isIP(h) ? cert.checkIP(h) : cert.checkHost(h)) === undefined);
}

/**
 * The webhook's TLS material from files that something else keeps current: with the chart's
 * webhook.certManager.enabled, a Secret issued and renewed by cert-manager and mounted by the
 * kubelet. Neither the Secret nor the MutatingWebhookConfiguration's caBundle is touched (cert-manager's
 * cainjector sets the caBundle), so the operator needs no API rights for them.
 *
 * Reloads without a restart: a watch on the directory (the kubelet replaces a Secret volume's
 * files by swapping its ..data symlink, a rename in this directory) triggers a re-read, and the
 * files are re-read every pollIntervalMs as well, in case an event is lost. A pair that does not
 * load (missing, unparsable, key and certificate of different renewals) is not served: the
 * previous one stays until a good pair is read.
 */
export class CertFileSource {
  private current: LoadedCert | undefined;
  private watcher: FSWatcher | undefined;
  private poll: ReturnType<typeof setInterval> | undefined;
  private debounce: ReturnType<typeof setTimeout> | undefined;
  private lastError = '';
  private watchWarned = false;

  constructor(
    private readonly opts: CertFileOptions,
    private readonly onTls: (tls: TlsMaterial) => void,
    private readonly log: Logger,
  ) {}

  get tls(): LoadedCert | undefined {
    return this.current;
  }

  /** Loads the files now, then watches and polls them until stop(). */
  start(): void {
    this.reload();
    this.watch();
    this.poll = setInterval(() => {
      // The directory may have been missing at start (volume not mounted yet): watch it now.
      if (!this.watcher) this.watch();
      this.reload();
    }, this.opts.pollIntervalMs);
    this.poll.unref();
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.poll) clearInterval(this.poll);
    if (this.debounce) clearTimeout(this.debounce);
  }

  /**
   * Reads the files; hands a certificate that differs from the current one to onTls. Returns
   * whether it did.
   */
  reload(): boolean {
    let next: LoadedCert;
    try {
      next = loadCertDir(this.opts.dir);
    } catch (e) {
      const msg = errorMessage(e);
      // Once per distinct problem, not at every poll.
      if (msg !== this.lastError) {
        this.lastError = msg;
        this.log.warn(
          { dir: this.opts.dir, err: msg, serving: this.current ? this.current.serialNumber : null },
          'webhook certificate files not loaded',
        );
      }
      return false;
    }
    this.lastError = '';
    if (this.current && this.current.certPem === next.certPem && this.current.keyPem === next.keyPem) {
      return false;
    }
    const missing = uncoveredHosts(next.certPem, this.opts.hosts.slice(0, 1));
    if (missing.length > 0) {
      this.log.warn({ dir: this.opts.dir, missing }, 'webhook certificate does not cover the Service name');
    }
    if (next.notAfter.getTime() <= Date.now()) {
      this.log.error({ dir: this.opts.dir, notAfter: next.notAfter }, 'webhook certificate has expired');
    }
    const first = !this.current;
    this.current = next;
    this.log.info(
      { dir: this.opts.dir, serial: next.serialNumber, notAfter: next.notAfter.toISOString() },
      first ? 'webhook certificate loaded from files' : 'webhook certificate files changed',
    );
    this.onTls(next);
    return true;
  }

  private watch(): void {
    try {
      this.watcher = watch(this.opts.dir, { persistent: false }, () => {
        // One rename of ..data brings several events: read once they have settled.
        if (this.debounce) clearTimeout(this.debounce);
        this.debounce = setTimeout(() => this.reload(), 100);
        this.debounce.unref();
      });
      this.watcher.on('error', (e) => {
        this.log.warn(
          { dir: this.opts.dir, err: errorMessage(e) },
          'watch of the certificate directory failed',
        );
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (e) {
      this.watcher = undefined;
      if (this.watchWarned) return;
      this.watchWarned = true;
      this.log.warn(
        { dir: this.opts.dir, err: errorMessage(e), pollMs: this.opts.pollIntervalMs },
        'cannot watch the certificate directory; polling it',
      );
    }
  }
}
