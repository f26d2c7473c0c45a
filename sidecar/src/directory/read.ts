import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { mergeDirectories } from '../../../operator/src/api/directory.js';
import { EndpointDirectory } from './endpoint-directory.js';
import { DirectoryError } from './errors.js';

/** Shard documents in a projected directory volume: shard-<i>.json (hidden ..data entries excluded). */
export const SHARD_FILE_PATTERN = /^shard-\d+\.json$/;

/** The files making up the directory at `path`: the shard files of a folder, or the file itself. */
export async function directoryFiles(path: string): Promise<string[]> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new DirectoryError(path, 'cannot stat', { cause: err });
  }
  if (!st.isDirectory()) return [path];
  const names = await readdir(path);
  return names
    .filter((n) => SHARD_FILE_PATTERN.test(n))
    .sort()
    .map((n) => join(path, n));
}

/** Parses shard documents (JSON text); the edge where the operator's zod schema is applied. */
export function parseDirectoryDocuments(path: string, texts: readonly string[]): EndpointDirectory {
  let docs: unknown[];
  try {
    docs = texts.map((t) => JSON.parse(t) as unknown);
  } catch (err) {
    throw new DirectoryError(path, `not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return new EndpointDirectory(mergeDirectories(docs).values());
  } catch (err) {
    throw new DirectoryError(path, `does not match the directory schema: ${String(err)}`, { cause: err });
  }
}

/** Reads and validates the whole directory. Throws {@link DirectoryError}. */
export async function readDirectory(path: string): Promise<EndpointDirectory> {
  const files = await directoryFiles(path);
  let texts: string[];
  try {
    texts = await Promise.all(files.map((f) => readFile(f, 'utf8')));
  } catch (err) {
    throw new DirectoryError(path, 'cannot read', { cause: err });
  }
  return parseDirectoryDocuments(path, texts);
}

/**
 * A cheap fingerprint of the directory's files (inode, size, mtime after
 * following symlinks): it changes when a file is rewritten, renamed over, or when
 * a projected volume swaps its ..data link.
 */
export async function directoryFingerprint(path: string): Promise<string> {
  try {
    const files = await directoryFiles(path);
    const parts = await Promise.all(
      files.map(async (f) => {
        const s = await stat(f, { bigint: true });
        return `${f}:${s.ino}:${s.size}:${s.mtimeNs}`;
      }),
    );
    return parts.join('|');
  } catch {
    return 'missing';
  }
}
