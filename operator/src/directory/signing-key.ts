import type { Logger } from 'pino';
import { SecretSchema, type Secret } from '../api/core.js';
import {
  generateSigningKeyPem,
  signingKeyFromPem,
  type DirectorySigningKey,
} from '../api/directory-signature.js';
import { Backoff } from '../controller/backoff.js';
import { sleep } from '../controller/clock.js';
import { errorMessage, isApiError } from '../errors.js';
import type { KubeClient } from '../kube/client.js';
import { Resources, resourcePath } from '../kube/resources.js';

/** Secret key holding the PKCS#8 PEM Ed25519 private key. */
export const SIGNING_KEY_FIELD = 'ed25519.key';
/** Secret key holding the public key (base64 of the raw 32 bytes), for operators and admins to read. */
export const PUBLIC_KEY_FIELD = 'ed25519.pub';
export const DEFAULT_SIGNING_KEY_SECRET = 'smc-operator-directory-key';

/** The signing key stored in a Secret; throws when the Secret holds no valid Ed25519 key. */
export function signingKeyOf(secret: Secret): DirectorySigningKey {
  const pem = secret.data?.[SIGNING_KEY_FIELD];
  if (!pem) throw new Error(`Secret ${secret.metadata.name} has no ${SIGNING_KEY_FIELD}`);
  return signingKeyFromPem(Buffer.from(pem, 'base64').toString('utf8'));
}

/**
 * Reads the directory signing key from the Secret `name` in the operator's namespace, creating
 * the Secret with a new key when it does not exist (replicas racing to create it: the loser reads
 * the winner's). A Secret that exists but holds no valid key is never overwritten: that is an
 * error for an admin to fix (deleting the Secret makes a new key, and pods injected before keep
 * the old public key: see docs/operator.md). Retries API failures until `signal` aborts.
 */
export async function loadSigningKey(
  client: KubeClient,
  namespace: string,
  name: string,
  log: Logger,
  signal?: AbortSignal,
): Promise<DirectorySigningKey> {
  const path = resourcePath(Resources.secrets, namespace, name);
  const backoff = new Backoff(200, 5_000);
  for (;;) {
    try {
      let secret: Secret | undefined;
      try {
        secret = await client.request('GET', path, SecretSchema);
      } catch (e) {
        if (!isApiError(e, 404)) throw e;
      }
      if (secret) return signingKeyOf(secret);
      const pem = generateSigningKeyPem();
      const key = signingKeyFromPem(pem);
      try {
        await client.request('POST', resourcePath(Resources.secrets, namespace), SecretSchema, {
          body: {
            apiVersion: 'v1',
            kind: 'Secret',
            type: 'Opaque',
            metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'smc-operator' } },
            data: {
              [SIGNING_KEY_FIELD]: Buffer.from(pem, 'utf8').toString('base64'),
              [PUBLIC_KEY_FIELD]: Buffer.from(key.publicKey, 'utf8').toString('base64'),
            },
          },
        });
        log.info({ secret: name, keyId: key.keyId }, 'directory signing key created');
        return key;
      } catch (e) {
        if (!isApiError(e, 409)) throw e;
        // Another replica created it first: read theirs.
      }
    } catch (e) {
      if (signal?.aborted) throw e;
      // A Secret with a bad key will not fix itself quickly, but keep trying rather than exit.
      const d = backoff.next();
      log.warn({ secret: name, err: errorMessage(e), retryMs: d }, 'directory signing key not loaded');
      await sleep(d, signal);
      if (signal?.aborted)
        throw new Error('stopped before the directory signing key was loaded', { cause: e });
    }
  }
}
