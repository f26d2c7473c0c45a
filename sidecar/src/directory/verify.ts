import { basename } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { DirectorySchema, type Directory } from '../../../operator/src/api/directory.js';
import { signatureProblem, verificationKeys } from '../../../operator/src/api/directory-signature.js';
import { DirectoryError } from './errors.js';

/**
 * Why a shard file was refused (label `reason` of smc_directory_rejected_total):
 *  - json, schema: not a directory document;
 *  - unsigned, unknown-key, bad-signature: not signed by a key this sidecar was given;
 *  - namespace: signed for another namespace (copied from a namespace with another view);
 *  - shard: the document's shard is not the file's;
 *  - rollback: older than the version of this shard already accepted (a replayed old copy).
 */
export const DIRECTORY_REJECT_REASONS = [
  'json',
  'schema',
  'unsigned',
  'unknown-key',
  'bad-signature',
  'namespace',
  'shard',
  'rollback',
] as const;
export type DirectoryRejectReason = (typeof DIRECTORY_REJECT_REASONS)[number];

export class DirectoryRejection extends DirectoryError {
  constructor(
    path: string,
    readonly reason: DirectoryRejectReason,
    message: string,
  ) {
    super(path, `rejected (${reason}): ${message}`);
    this.name = 'DirectoryRejection';
  }
}

export interface DirectoryTrust {
  /** keyId -> key; empty: shards are read without checking signatures (nothing else is checked either). */
  readonly keys: ReadonlyMap<string, KeyObject>;
  /** The pod's namespace: a signed shard must name it. */
  readonly namespace: string | null;
}

export const UNVERIFIED: DirectoryTrust = { keys: new Map(), namespace: null };

/** The trust settings from the configuration (base64 public keys, the pod's namespace). */
export function directoryTrust(publicKeys: readonly string[], namespace: string | null): DirectoryTrust {
  return { keys: verificationKeys(publicKeys), namespace };
}

export function verifying(trust: DirectoryTrust): boolean {
  return trust.keys.size > 0;
}

/** One shard file as accepted: its text (to skip unchanged files) and its document. */
export interface AcceptedShard {
  readonly text: string;
  readonly doc: Directory;
}

const SHARD_INDEX = /^shard-(\d+)\.json$/;

/**
 * Checks one shard file: JSON, then (with keys) the signature over the bytes as written, then the
 * schema, then (with keys) that it was built for this namespace, carries the shard its file name
 * says, and is not older than `previous` (the version of the same file accepted before).
 * Throws {@link DirectoryRejection}.
 */
export function acceptShard(
  file: string,
  text: string,
  trust: DirectoryTrust,
  previous?: AcceptedShard,
): AcceptedShard {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new DirectoryRejection(file, 'json', err instanceof Error ? err.message : String(err));
  }
  if (verifying(trust)) {
    const problem = signatureProblem(raw, trust.keys);
    if (problem === 'unsigned') throw new DirectoryRejection(file, 'unsigned', 'no keyId and signature');
    if (problem === 'unknown-key') {
      const keyId = String((raw as { keyId?: unknown }).keyId);
      throw new DirectoryRejection(file, 'unknown-key', `signed with key ${keyId}, which is not trusted`);
    }
    if (problem === 'bad-signature')
      throw new DirectoryRejection(file, 'bad-signature', 'the signature does not match the content');
  }
  const parsed = DirectorySchema.safeParse(raw);
  if (!parsed.success)
    throw new DirectoryRejection(file, 'schema', parsed.error.message.replace(/\s+/g, ' ').slice(0, 300));
  const doc = parsed.data;
  if (verifying(trust)) {
    if (doc.namespace !== trust.namespace)
      throw new DirectoryRejection(
        file,
        'namespace',
        `built for namespace "${doc.namespace ?? ''}", this pod is in "${trust.namespace ?? ''}"`,
      );
    const m = SHARD_INDEX.exec(basename(file));
    if (m && Number(m[1]) !== doc.shard)
      throw new DirectoryRejection(file, 'shard', `holds shard ${doc.shard}`);
    const before = previous?.doc.issuedAt ?? 0;
    if ((doc.issuedAt ?? 0) < before)
      throw new DirectoryRejection(
        file,
        'rollback',
        `issued at ${doc.issuedAt ?? 0}, before the accepted version (${before})`,
      );
  }
  return { text, doc };
}
