/** A minimal RFC 6902 applier (add / replace / remove / test) to check generated patches in tests. */
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function unescape(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

export function applyPatch<T>(doc: T, ops: readonly { op: string; path: string; value?: unknown }[]): T {
  const root = JSON.parse(JSON.stringify(doc)) as Json;
  for (const op of ops) {
    const parts = op.path.split('/').slice(1).map(unescape);
    const last = parts.pop();
    if (last === undefined) throw new Error(`bad path ${op.path}`);
    let parent: Json = root;
    for (const p of parts) {
      const next: Json | undefined = Array.isArray(parent)
        ? parent[Number(p)]
        : parent && typeof parent === 'object'
          ? parent[p]
          : undefined;
      if (next === undefined) throw new Error(`path not found: ${op.path}`);
      parent = next;
    }
    const value = op.value as Json;
    if (Array.isArray(parent)) {
      if (op.op === 'add') {
        if (last === '-') parent.push(value);
        else parent.splice(Number(last), 0, value);
      } else if (op.op === 'replace') parent[Number(last)] = value;
      else if (op.op === 'remove') parent.splice(Number(last), 1);
      else if (op.op === 'test' && JSON.stringify(parent[Number(last)]) !== JSON.stringify(value)) {
        throw new Error(`test failed at ${op.path}`);
      }
    } else if (parent && typeof parent === 'object') {
      if (op.op === 'add') parent[last] = value;
      else if (op.op === 'replace') {
        if (!(last in parent)) throw new Error(`replace of missing ${op.path}`);
        parent[last] = value;
      } else if (op.op === 'remove') Reflect.deleteProperty(parent, last);
      else if (op.op === 'test' && JSON.stringify(parent[last]) !== JSON.stringify(value)) {
        throw new Error(`test failed at ${op.path}`);
      }
    } else throw new Error(`cannot apply at ${op.path}`);
  }
  return root as T;
}
