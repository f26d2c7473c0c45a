/** Work queue keys: one per policy, plus one for the whole directory. */
export type QueueKey = `policy:${string}` | 'directory';

export const DIRECTORY_KEY = 'directory' as const;

export function policyKey(objKey: string): QueueKey {
  return `policy:${objKey}`;
}

export function parseKey(key: QueueKey): { kind: 'policy'; objKey: string } | { kind: 'directory' } {
  return key === DIRECTORY_KEY
    ? { kind: 'directory' }
    : { kind: 'policy', objKey: key.slice('policy:'.length) };
}
