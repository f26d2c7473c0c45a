import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { isIP } from 'node:net';
import {
  bitString,
  bool,
  explicit,
  implicit,
  octets,
  oid,
  seq,
  set,
  smallInt,
  time,
  uint,
  utf8,
} from './der.js';

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

export interface KeyPairPem {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface IssueOptions {
  readonly commonName: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

function name(cn: string): Buffer {
  return seq(set(seq(oid(OID.organization), utf8('smc-operator'))), set(seq(oid(OID.commonName), utf8(cn))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // IPv6: expand "::" and pack eight 16-bit groups.
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') && tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

function keyId(publicKey: KeyObject): Buffer {
  return createHash('sha1')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest();
}

function serial(): Buffer {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x01;
  return b;
}

function build(
  subjectCn: string,
  issuerCn: string,
  subjectKey: KeyObject,
  issuerKey: KeyObject,
  notBefore: Date,
  notAfter: Date,
  extensions: Buffer[],
): string {
  const sigAlg = seq(oid(OID.ecdsaWithSha256));
  const tbs = seq(
    explicit(0, smallInt(2)), // v3
    uint(serial()),
    sigAlg,
    name(issuerCn),
    seq(time(notBefore), time(notAfter)),
    name(subjectCn),
    subjectKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, issuerKey);
  const der = seq(tbs, sigAlg, bitString(signature));
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64.trimEnd()}\n-----END CERTIFICATE-----\n`;
}

function newKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

function keyPem(k: KeyObject): string {
  return k.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** A self-signed CA certificate (ECDSA P-256) for signing webhook serving certificates. */
export function createCa(o: IssueOptions): KeyPairPem {
  const { privateKey, publicKey } = newKey();
  const ski = keyId(publicKey);
  const certPem = build(o.commonName, o.commonName, publicKey, privateKey, o.notBefore, o.notAfter, [
    extension(OID.basicConstraints, true, seq(bool(true))),
    // keyCertSign (bit 5), cRLSign (bit 6), digitalSignature (bit 0): 1000 0110, 1 unused bit.
    extension(OID.keyUsage, true, bitString(Buffer.from([0x86]), 1)),
    extension(OID.subjectKeyIdentifier, false, octets(ski)),
  ]);
  return { certPem, keyPem: keyPem(privateKey) };
}

/** A serving certificate for `hosts` (DNS names and IP addresses), signed by the CA. */
export function issueServingCert(ca: KeyPairPem, hosts: readonly string[], o: IssueOptions): KeyPairPem {
  const caCert = new X509Certificate(ca.certPem);
  const caKey = createPrivateKey(ca.keyPem);
  const { privateKey, publicKey } = newKey();
  const san = seq(
    ...hosts.map((h) => (isIP(h) ? implicit(7, ipBytes(h)) : implicit(2, Buffer.from(h, 'ascii')))),
  );
  const certPem = build(o.commonName, caCommonName(caCert), publicKey, caKey, o.notBefore, o.notAfter, [
    extension(OID.basicConstraints, true, seq()),
    // digitalSignature (bit 0): 1000 0000, 7 unused bits.
    extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)),
    extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
    extension(OID.subjectAltName, false, san),
    extension(OID.subjectKeyIdentifier, false, octets(keyId(publicKey))),
    extension(OID.authorityKeyIdentifier, false, seq(implicit(0, keyId(caCert.publicKey)))),
  ]);
  return { certPem, keyPem: keyPem(privateKey) };
}

function caCommonName(cert: X509Certificate): string {
  const m = /CN=([^\n]+)/.exec(cert.subject);
  return m?.[1] ?? 'smc-operator-ca';
}

/** Milliseconds until the certificate expires (negative when expired). */
export function msUntilExpiry(certPem: string, now: Date): number {
  return Date.parse(new X509Certificate(certPem).validTo) - now.getTime();
}

/** Whether the serving certificate covers every host and was signed by the CA. */
export function certCovers(certPem: string, caPem: string, hosts: readonly string[]): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return false;
    return hosts.every((h) => (isIP(h) ? cert.checkIP(h) !== undefined : cert.checkHost(h) !== undefined));
  } catch {
    return false;
  }
}
