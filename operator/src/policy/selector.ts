import type { LabelSelector } from '../api/meta.js';

export type Labels = Readonly<Record<string, string>> | null | undefined;

/**
 * metav1.LabelSelector semantics: all matchLabels and all matchExpressions must hold; an empty or
 * absent selector matches everything (as for NetworkPolicy.podSelector).
 */
export function selectorMatches(selector: LabelSelector | null | undefined, labels: Labels): boolean {
  if (!selector) return true;
  const l = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (l[k] !== v) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(l, req.key);
    const value = l[req.key];
    const values = req.values ?? [];
    switch (req.operator) {
      case 'In':
        if (!has || value === undefined || !values.includes(value)) return false;
        break;
      case 'NotIn':
        if (has && value !== undefined && values.includes(value)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}
