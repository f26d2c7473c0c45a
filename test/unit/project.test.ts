import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// Guards the contract the README promises: one test command, run by CI as-is.
describe('project layout', () => {
  it('CI runs exactly the documented test command', () => {
    const ci = readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8');
    expect(ci).toMatch(/^npm test$/m);
  });
});
