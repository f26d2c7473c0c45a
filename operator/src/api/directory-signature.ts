/**
 * Signatures of directory shards (Ed25519, node:crypto), shared by the operator (signs) and the
 * sidecar (verifies).
 *
 * A signed shard is the directory document with two more fields at the end, `keyId` and then
 * `signature`. The signed bytes are the UTF-8 of `JSON.stringify` of the document *without*
 * `signature`, keys in the order they appear (the operator writes them in a fixed order, and
 * JSON.parse followed by JSON.stringify reproduces its output exactly). A verifier therefore
 * parses the file, removes `signature`, serialises the rest and checks the signature over that:
 * anything an editor changes (an endpoint, the namespace, the time, the key order) breaks it.
 *
 * Keys travel as base64 of the 32 raw bytes of the Ed25519 public key (what the webhook puts in
 * the sidecar's SMC_DIRECTORY_PUBLIC_KEYS); the private key is PKCS#8 PEM in the operator's Secret.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 key bytes follow. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface DirectorySigningKey {
  readonly privateKey: KeyObject;
  /** The public half, for checking what this key signed. */
  readonly verifyKey: KeyObject;
  /** base64 of the raw 32-byte public key. */
  readonly publicKey: string;
  readonly keyId: string;
}

/** A new key pair: the private key as PKCS#8 PEM, the public key as base64 of its raw bytes. */
export function generateSigningKeyPem(): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ type: 'spki', format: 'der' });
  if (der.length !== ED25519_SPKI_PREFIX.length + 32 || !der.subarray(0, 12).equals(ED25519_SPKI_PREFIX))
    throw new Error('not an Ed25519 public key');
  return der.subarray(12);
}

/** The signing key from its PKCS#8 PEM (throws unless it is an Ed25519 private key). */
export function signingKeyFromPem(pem: string): DirectorySigningKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('the directory signing key is not Ed25519');
  const verifyKey = createPublicKey(privateKey);
  const publicKey = rawPublicKey(verifyKey).toString('base64');
  return { privateKey, verifyKey, publicKey, keyId: keyIdOf(publicKey) };
}

/** The key id of a base64 raw public key: the first 16 hex digits of its sha256. */
export function keyIdOf(publicKey: string): string {
  return createHash('sha256').update(Buffer.from(publicKey, 'base64')).digest('hex').slice(0, 16);
}

/** A verification key from base64 of the raw 32 bytes (throws on anything else). */
export function publicKeyFromBase64(publicKey: string): KeyObject {
  const raw = Buffer.from(publicKey.trim(), 'base64');
  if (raw.length !== 32 || raw.toString('base64') !== publicKey.trim())
    throw new Error('an Ed25519 public key is 32 bytes in base64 (44 characters)');
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** keyId -> key, from base64 public keys. */
export function verificationKeys(publicKeys: readonly string[]): Map<string, KeyObject> {
  return new Map(publicKeys.map((k) => [keyIdOf(k.trim()), publicKeyFromBase64(k)]));
}

/** The bytes a signature covers: the document without `signature`, serialised in its key order. */
export function signedBytes(doc: Readonly<Record<string, unknown>>): Buffer {
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (k !== 'signature') rest[k] = v;
  return Buffer.from(JSON.stringify(rest), 'utf8');
}

/** Signs a document: returns its JSON text with `keyId` and `signature` appended. */
export function signDocument(doc: Readonly<Record<string, unknown>>, key: DirectorySigningKey): string {
  const unsigned: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (k !== 'keyId' && k !== 'signature') unsigned[k] = v;
  unsigned['keyId'] = key.keyId;
  const signature = sign(null, signedBytes(unsigned), key.privateKey).toString('base64');
  return JSON.stringify({ ...unsigned, signature });
}

export type SignatureProblem = 'unsigned' | 'unknown-key' | 'bad-signature';

/**
 * Checks the signature of a parsed document against the trusted keys; null when it is valid.
 * Call it on the object JSON.parse returned, before any schema strips or reorders fields.
 */
export function signatureProblem(
  doc: unknown,
  keys: ReadonlyMap<string, KeyObject>,
): SignatureProblem | null {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'unsigned';
  const d = doc as Record<string, unknown>;
  const signature = d['signature'];
  const keyId = d['keyId'];
  if (typeof signature !== 'string' || typeof keyId !== 'string') return 'unsigned';
  const key = keys.get(keyId);
  if (!key) return 'unknown-key';
  const sig = Buffer.from(signature, 'base64');
  if (sig.length !== 64) return 'bad-signature';
  return verify(null, signedBytes(d), key, sig) ? null : 'bad-signature';
}
