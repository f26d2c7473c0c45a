// The webhook certificate served from files (--webhook-cert-dir, the chart's
// webhook.certManager.enabled): a real HTTPS server on 127.0.0.1 fed by CertFileSource, the files
// laid out and replaced as the kubelet does for a Secret volume (a ..data symlink swapped by rename).
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { CertFileSource, loadCertDir, uncoveredHosts } from './certfiles.js';
import type { TlsMaterial } from './certmanager.js';
import { createCa, issueServingCert, type KeyPairPem } from './certs.js';

const HOST = 'smc-operator-webhook.smc-system.svc';
const log = pino({ level: 'silent' });

function issue(ca: KeyPairPem, hosts: string[] = [HOST, '127.0.0.1']): KeyPairPem {
  const now = Date.now();
  return issueServingCert(ca, hosts, {
    commonName: hosts[0] ?? HOST,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
  });
}

function newCa(): KeyPairPem {
  const now = Date.now();
  return createCa({
    commonName: 'test-ca',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
  });
}

/** A Secret volume as the kubelet writes it: files behind ..data, replaced by one rename. */
class SecretVolume {
  private n = 0;
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  write(files: Record<string, string>): void {
    const ts = `..2025_01_01_00_00_0${this.n++}.${process.pid}`;
    mkdirSync(join(this.dir, ts));
    for (const [name, content] of Object.entries(files)) writeFileSync(join(this.dir, ts, name), content);
    const old = this.n > 1 ? `..2025_01_01_00_00_0${this.n - 2}.${process.pid}` : undefined;
    symlinkSync(ts, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const name of Object.keys(files)) {
      try {
        symlinkSync(join('..data', name), join(this.dir, name));
      } catch {
        // The name already points into ..data.
      }
    }
    if (old) rmSync(join(this.dir, old), { recursive: true, force: true });
  }

  writePair(pair: KeyPairPem, ca?: KeyPairPem): void {
    this.write({ 'tls.crt': pair.certPem, 'tls.key': pair.keyPem, ...(ca ? { 'ca.crt': ca.certPem } : {}) });
  }
}

/** Serial number of the certificate the server presents. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const c = s.getPeerX509Certificate();
      s.end();
      if (c) resolve(c.serialNumber);
      else reject(new Error('no certificate'));
    });
    s.once('error', reject);
  });
}

/** The served serial, '' while nothing listens yet. */
async function served(port: () => number): Promise<string> {
  try {
    return await servedSerial(port());
  } catch {
    return '';
  }
}

const serialOf = (p: KeyPairPem): string => new X509Certificate(p.certPem).serialNumber;

async function until(cond: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const cleanup: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'smc-certfiles-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An HTTPS server on 127.0.0.1 whose certificate CertFileSource keeps current, as the operator does. */
async function serve(
  dir: string,
  pollIntervalMs: number,
): Promise<{ source: CertFileSource; port: () => number }> {
  let server: https.Server | undefined;
  const loaded: TlsMaterial[] = [];
  const source = new CertFileSource(
    { dir, hosts: [HOST], pollIntervalMs },
    (m) => {
      loaded.push(m);
      if (server) server.setSecureContext({ cert: m.certPem, key: m.keyPem });
      else {
        server = https.createServer({ cert: m.certPem, key: m.keyPem }, (_req, res) => res.end('ok'));
        server.listen(0, '127.0.0.1');
      }
    },
    log,
  );
  cleanup.push(async () => {
    source.stop();
    const s = server;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  });
  source.start();
  return {
    source,
    port: () => {
      const a = server?.address() as AddressInfo | null | undefined;
      if (!a) throw new Error('not listening');
      return a.port;
    },
  };
}

describe('loadCertDir', () => {
  it('loads a pair, with or without ca.crt, and checks that the key is the certificate’s', () => {
    const ca = newCa();
    const a = issue(ca);
    const vol = new SecretVolume(join(tmp(), 'tls'));
    vol.writePair(a, ca);
    const got = loadCertDir(vol.dir);
    expect(got.serialNumber).toBe(serialOf(a));
    expect(got.caBundlePem).toBe(ca.certPem);
    expect(got.notAfter.getTime()).toBeGreaterThan(Date.now());
    vol.writePair(a);
    expect(loadCertDir(vol.dir).caBundlePem).toBe('');
    // A certificate followed by its chain: the first one is the serving certificate.
    vol.write({ 'tls.crt': a.certPem + ca.certPem, 'tls.key': a.keyPem });
    expect(loadCertDir(vol.dir).serialNumber).toBe(serialOf(a));
  });

  it('refuses a missing file, garbage, and a key of another certificate', () => {
    const ca = newCa();
    const a = issue(ca);
    const b = issue(ca);
    const dir = join(tmp(), 'tls');
    expect(() => loadCertDir(dir)).toThrow(/ENOENT/);
    const vol = new SecretVolume(dir);
    vol.write({ 'tls.crt': a.certPem });
    expect(() => loadCertDir(dir)).toThrow(/tls\.key/);
    vol.write({ 'tls.crt': 'not a certificate', 'tls.key': a.keyPem });
    expect(() => loadCertDir(dir)).toThrow();
    vol.write({ 'tls.crt': a.certPem, 'tls.key': b.keyPem });
    expect(() => loadCertDir(dir)).toThrow(/is not the key of/);
  });

  it('names the hosts a certificate does not cover', () => {
    const ca = newCa();
    expect(uncoveredHosts(issue(ca).certPem, [HOST, '127.0.0.1'])).toEqual([]);
    expect(uncoveredHosts(issue(ca, ['other.svc']).certPem, [HOST, '127.0.0.1'])).toEqual([
      HOST,
      '127.0.0.1',
    ]);
  });
});

describe('CertFileSource', () => {
  it('serves the files and, without a restart, the renewed pair the kubelet swaps in', async () => {
    const ca = newCa();
    const vol = new SecretVolume(join(tmp(), 'tls'));
    const first = issue(ca);
    vol.writePair(first, ca);
    // A poll far beyond the test: only the directory watch can pick the renewal up in time.
    const { source, port } = await serve(vol.dir, 600_000);
    await until(async () => (await served(port)) === serialOf(first), 5_000, 'first');
    expect(source.tls?.serialNumber).toBe(serialOf(first));

    // cert-manager renews (rotationPolicy Always: a new key), the kubelet updates the volume.
    const second = issue(ca);
    vol.writePair(second, ca);
    await until(async () => (await served(port)) === serialOf(second), 5_000, 'renewed certificate');

    // Renewed under a new CA (the cainjector moves the caBundle along): served the same way.
    const ca2 = newCa();
    const third = issue(ca2);
    vol.writePair(third, ca2);
    await until(async () => (await served(port)) === serialOf(third), 5_000, 'certificate of the new CA');
    expect(source.tls?.caBundlePem).toBe(ca2.certPem);
  });

  it('keeps serving the last good pair while the files are inconsistent', async () => {
    const ca = newCa();
    const vol = new SecretVolume(join(tmp(), 'tls'));
    const good = issue(ca);
    vol.writePair(good);
    const { source, port } = await serve(vol.dir, 100);
    await until(async () => (await served(port)) === serialOf(good), 5_000, 'first');
    const other = issue(ca);
    vol.write({ 'tls.crt': other.certPem, 'tls.key': good.keyPem });
    await new Promise((r) => setTimeout(r, 400));
    expect(source.reload()).toBe(false);
    expect(await served(port)).toBe(serialOf(good));
    vol.writePair(other);
    await until(async () => (await served(port)) === serialOf(other), 5_000, 'consistent pair');
  });

  it('starts serving once a directory that was missing at start appears (poll)', async () => {
    const dir = join(tmp(), 'not-yet-mounted');
    const { source, port } = await serve(dir, 100);
    expect(source.tls).toBeUndefined();
    expect(() => port()).toThrow(/not listening/);
    const ca = newCa();
    const pair = issue(ca);
    new SecretVolume(dir).writePair(pair);
    await until(() => source.tls !== undefined, 5_000, 'the first load');
    await until(async () => (await served(port)) === serialOf(pair), 5_000, 'serving');
  });
});
