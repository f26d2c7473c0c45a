import { X509Certificate } from 'node:crypto';
import { must } from '../testing/fixtures.js';
import { describe, expect, it } from 'vitest';
import { planCertificates } from './certmanager.js';
import { certCovers, createCa, issueServingCert, msUntilExpiry } from './certs.js';

const DAY = 86_400_000;
const now = new Date();
const opts = {
  hosts: ['svc.ns.svc', '127.0.0.1'],
  caValidityMs: 100 * DAY,
  certValidityMs: 30 * DAY,
  rotateBeforeMs: 5 * DAY,
};

describe('certificates', () => {
  it('issues a CA and a serving certificate that verify and cover the hosts', () => {
    const ca = createCa({ commonName: 'test-ca', notBefore: now, notAfter: new Date(now.getTime() + DAY) });
    const caCert = new X509Certificate(ca.certPem);
    expect(caCert.ca).toBe(true);
    expect(caCert.verify(caCert.publicKey)).toBe(true);
    const s = issueServingCert(ca, ['svc.ns.svc', '127.0.0.1', '::1'], {
      commonName: 'svc.ns.svc',
      notBefore: now,
      notAfter: new Date(now.getTime() + DAY),
    });
    const cert = new X509Certificate(s.certPem);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.subjectAltName).toContain('DNS:svc.ns.svc');
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(certCovers(s.certPem, ca.certPem, ['svc.ns.svc', '127.0.0.1'])).toBe(true);
    expect(certCovers(s.certPem, ca.certPem, ['other.ns.svc'])).toBe(false);
    expect(msUntilExpiry(s.certPem, now)).toBeGreaterThan(DAY - 2000);
  });
});

describe('planCertificates', () => {
  it('creates everything when nothing exists, then keeps it', () => {
    const p = must(planCertificates(undefined, opts, now));
    expect(certCovers(p.certPem, p.caCertPem, opts.hosts)).toBe(true);
    expect(p.caBundlePem.trim()).toBe(p.caCertPem.trim());
    const cur = {
      ca: { certPem: p.caCertPem, keyPem: p.caKeyPem },
      serving: { certPem: p.certPem, keyPem: p.keyPem },
      bundle: p.caBundlePem,
    };
    expect(planCertificates(cur, opts, now)).toBeUndefined();
  });
  it('re-issues the serving certificate (same CA) when it nears expiry or misses a host', () => {
    const p = must(planCertificates(undefined, opts, now));
    const cur = {
      ca: { certPem: p.caCertPem, keyPem: p.caKeyPem },
      serving: { certPem: p.certPem, keyPem: p.keyPem },
      bundle: p.caBundlePem,
    };
    const soon = new Date(now.getTime() + 26 * DAY);
    const r = must(planCertificates(cur, opts, soon));
    expect(r.caCertPem).toBe(p.caCertPem);
    expect(r.certPem).not.toBe(p.certPem);
    const moreHosts = must(planCertificates(cur, { ...opts, hosts: [...opts.hosts, 'new.ns.svc'] }, now));
    expect(certCovers(moreHosts.certPem, p.caCertPem, ['new.ns.svc'])).toBe(true);
  });
  it('rotates the CA in two phases: trust both CAs first, then serve a certificate of the new CA', () => {
    const p = must(planCertificates(undefined, opts, now));
    const cur = {
      ca: { certPem: p.caCertPem, keyPem: p.caKeyPem },
      serving: { certPem: p.certPem, keyPem: p.keyPem },
      bundle: p.caBundlePem,
    };
    // 91 days on: CA has 9 days left (< 2 x rotateBefore); the serving cert issued at day 0 expired,
    // so use a fresh one to see phase 1.
    const t = new Date(now.getTime() + 91 * DAY);
    const freshServing = issueServingCert(cur.ca, opts.hosts, {
      commonName: 'x',
      notBefore: now,
      notAfter: new Date(now.getTime() + 99 * DAY),
    });
    const phase1 = must(planCertificates({ ...cur, serving: freshServing }, opts, t));
    expect(phase1.caRotated).toBe(true);
    expect(phase1.caCertPem).not.toBe(p.caCertPem);
    expect(phase1.certPem).toBe(freshServing.certPem); // still the old CA's certificate
    expect(phase1.caBundlePem).toContain(phase1.caCertPem.trim());
    expect(phase1.caBundlePem).toContain(p.caCertPem.trim());
    const phase2 = must(
      planCertificates(
        {
          ca: { certPem: phase1.caCertPem, keyPem: phase1.caKeyPem },
          serving: { certPem: phase1.certPem, keyPem: phase1.keyPem },
          bundle: phase1.caBundlePem,
        },
        opts,
        t,
      ),
    );
    expect(phase2.caCertPem).toBe(phase1.caCertPem);
    expect(certCovers(phase2.certPem, phase1.caCertPem, opts.hosts)).toBe(true);
    expect(phase2.caRotated).toBe(false);
  });
});
