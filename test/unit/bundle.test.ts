import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// image/bundle.mjs on the built dist/, laid out as the image lays it out (/opt/smc with the
// bundle in dist/bin, package.json and the addon beside it, no node_modules): every role loads.
const REPO = new URL('../../', import.meta.url).pathname;
const built = existsSync(join(REPO, 'dist/bin/smc.js'));
const root = mkdtempSync(join(tmpdir(), 'smc-bundle-test-'));
const bin = join(root, 'opt/smc/dist/bin');
afterAll(() => rmSync(root, { recursive: true, force: true }));

function smc(...args: string[]): { code: number | null; out: string } {
  // Outside the repository, so nothing resolves from its node_modules.
  const r = spawnSync(process.execPath, [join(bin, 'smc.js'), ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe.skipIf(!built)('image bundle', () => {
  beforeAll(() => {
    execFileSync(process.execPath, [join(REPO, 'image/bundle.mjs'), REPO, bin], { stdio: 'pipe' });
    copyFileSync(join(REPO, 'package.json'), join(root, 'opt/smc/package.json'));
  }, 60_000);

  it('is self-contained: nothing is loaded from outside it but Node built-ins', () => {
    const summary = JSON.parse(readFileSync(join(bin, 'bundle.json'), 'utf8')) as { external: string[] };
    expect(summary.external.length).toBeGreaterThan(0);
    // Optional peers their users require inside try/catch (ws, node-fetch, debug): absent by design.
    const optional = ['bufferutil', 'encoding', 'supports-color', 'utf-8-validate'];
    const foreign = summary.external.filter((s) => !isBuiltin(s) && !optional.includes(s));
    expect(foreign).toEqual([]);
  });

  it('runs the entry point and each role loads its modules', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(smc('version')).toEqual({ code: 0, out: `${pkg.version}\n` });
    const operator = smc('operator', '--help');
    expect(operator.code).toBe(0);
    expect(operator.out).toContain('--queue-burst');
  });

  it('every role parses its command line the same way: --help exits 0, an unknown flag 2', () => {
    expect(smc('--help')).toMatchObject({ code: 0, out: expect.stringMatching(/^usage: smc <command>/) });
    expect(smc('--no-such-flag')).toEqual({
      code: 2,
      out: 'smc: unknown flag --no-such-flag\nRun "smc --help" for usage.\n',
    });
    // Each role's parser runs after its chunk loaded: the usage names the role.
    for (const role of ['operator', 'node-agent', 'sidecar', 'intercept', 'connections']) {
      const help = smc(role, '--help');
      expect(help.code, `${role} --help: ${help.out}`).toBe(0);
      expect(help.out, role).toMatch(new RegExp(`^usage: smc ${role}\\b`));
      expect(smc(role, '-h'), role).toEqual(help);
      expect(smc(role, '--no-such-flag'), role).toEqual({
        code: 2,
        out: `smc ${role}: unknown flag --no-such-flag\nRun "smc ${role} --help" for usage.\n`,
      });
    }
    expect(smc('operator', '--workers')).toMatchObject({
      code: 2,
      out: expect.stringMatching(/--workers needs a value/),
    });
    expect(smc('node-agent', '--rescan-interval=1')).toMatchObject({
      code: 2,
      out: expect.stringMatching(/^smc node-agent: --rescan-interval: /),
    });
  });

  it('loads the verbs addon from the image path, or says which file is missing', () => {
    const addon = join(REPO, 'native/build/Release/smc_verbs.node');
    const chunk = readdirSync(bin).find((n) => n.startsWith('native-'));
    expect(chunk, 'the addon loader is its own lazily loaded chunk').toBeDefined();
    const load = (): string =>
      execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `await import(${JSON.stringify(join(bin, chunk ?? ''))}); console.log('ok')`,
        ],
        { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
    if (!existsSync(addon)) return;
    expect(load).toThrow(/addon not built/);
    mkdirSync(join(root, 'opt/smc/native/build/Release'), { recursive: true });
    copyFileSync(addon, join(root, 'opt/smc/native/build/Release/smc_verbs.node'));
    expect(load().trim()).toBe('ok');
  });

  it('ships the licenses of the bundled packages', () => {
    const text = readFileSync(join(bin, 'THIRD_PARTY_LICENSES'), 'utf8');
    for (const name of ['@kubernetes/client-node', 'pino', 'prom-client', 'zod', '@grpc/grpc-js'])
      expect(text).toMatch(new RegExp(`^${name.replace('/', '\\/')}@\\d+\\.\\d+\\.\\d+ \\(`, 'm'));
    expect(existsSync(join(bin, 'api.proto'))).toBe(true);
  });
});
