import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// bin/kubectl-smc with a fake kubectl that records its arguments: the plugin's own logic (argument
// parsing and pass-through). PATH holds the fake kubectl and bash, nothing else.
const PLUGIN = new URL('../../bin/kubectl-smc', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'kubectl-smc-test-'));
const log = join(dir, 'calls');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// One line per call, arguments separated by a tab (bash builtins only).
writeFileSync(
  join(dir, 'kubectl'),
  `#!/bin/bash
line=''
for a in "$@"; do line+="$a"$'\\t'; done
printf '%s\\n' "\${line%$'\\t'}" >> '${log}'
echo "fake kubectl output"
exit "\${FAKE_KUBECTL_EXIT:-0}"
`,
);
chmodSync(join(dir, 'kubectl'), 0o755);
const bash = spawnSync('/bin/sh', ['-c', 'command -v bash'], { encoding: 'utf8' }).stdout.trim();
symlinkSync(bash, join(dir, 'bash'));

function plugin(
  args: string[],
  env: Record<string, string> = {},
): { code: number | null; out: string; err: string; calls: string[][] } {
  writeFileSync(log, '');
  const r = spawnSync(PLUGIN, args, { encoding: 'utf8', env: { PATH: dir, ...env } });
  const calls = readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t'));
  return { code: r.status, out: r.stdout, err: r.stderr, calls };
}

describe('kubectl smc', () => {
  it('connections: execs smc connections in the smc-sidecar container, with -n and -o passed on', () => {
    const r = plugin(['connections', 'client-7d9f', '-n', 'shop', '-o', 'json']);
    expect(r).toMatchObject({ code: 0, out: 'fake kubectl output\n', err: '' });
    expect(r.calls).toEqual([
      [
        'exec',
        'client-7d9f',
        '--namespace',
        'shop',
        '-c',
        'smc-sidecar',
        '--',
        'smc',
        'connections',
        '--output',
        'json',
      ],
    ]);
  });

  it('connections: a table by default, in the context namespace, and --admin-port on to smc', () => {
    expect(plugin(['connections', 'web']).calls).toEqual([
      ['exec', 'web', '-c', 'smc-sidecar', '--', 'smc', 'connections', '--output', 'table'],
    ]);
    expect(plugin(['connections', 'pod/web', '--admin-port', '16000']).calls[0]?.slice(-4)).toEqual([
      '--output',
      'table',
      '--admin-port',
      '16000',
    ]);
  });

  it('passes kubectl connection flags through, in every spelling, before the verb', () => {
    const r = plugin([
      '--kubeconfig',
      '/k/config',
      'connections',
      '--context=kind-smc',
      'web',
      '--namespace=shop',
      '-ojson',
      '--user',
      'admin',
      '--request-timeout=5s',
    ]);
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([
      [
        '--kubeconfig',
        '/k/config',
        '--context=kind-smc',
        '--user',
        'admin',
        '--request-timeout=5s',
        'exec',
        'web',
        '--namespace',
        'shop',
        '-c',
        'smc-sidecar',
        '--',
        'smc',
        'connections',
        '--output',
        'json',
      ],
    ]);
    expect(plugin(['connections', 'web', '-nshop']).calls[0]?.slice(2, 4)).toEqual(['--namespace', 'shop']);
    expect(plugin(['connections', 'web', '-n=shop']).calls[0]?.slice(2, 4)).toEqual(['--namespace', 'shop']);
  });

  it('connections: kubectl exec fails (sidecar not answering, no sidecar) → its exit code, and a hint', () => {
    const r = plugin(['connections', 'web'], { FAKE_KUBECTL_EXIT: '1' });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/"smc connections" in pod web \(container smc-sidecar\) failed \(exit 1\)/);
  });

  it('status: SmcPolicies of the namespace (or all) and SmcNodes, as custom columns', () => {
    const r = plugin(['status', '-n', 'shop', '--context', 'kind-smc']);
    expect(r.code).toBe(0);
    expect(r.out).toBe('SmcPolicies\nfake kubectl output\n\nSmcNodes\nfake kubectl output\n');
    const [policies, nodes] = r.calls;
    expect(policies?.slice(0, 6)).toEqual([
      '--context',
      'kind-smc',
      'get',
      'smcpolicies.smc.dev',
      '--namespace',
      'shop',
    ]);
    expect(policies?.[7]).toMatch(/^custom-columns=NAMESPACE:\.metadata\.namespace,NAME:\.metadata\.name,/);
    expect(policies?.[7]).toContain('MATCHED:.status.matchedPods,READY:.status.readyPods');
    expect(policies?.[7]).toContain('STATUS:.status.conditions[?(@.type=="Ready")].status');
    // SmcNodes are cluster-scoped: no namespace.
    expect(nodes?.slice(0, 4)).toEqual(['--context', 'kind-smc', 'get', 'smcnodes.smc.dev']);
    expect(nodes?.[5]).toContain('DEVICES:.status.deviceCount,NAMES:.status.devices[*].name');

    expect(plugin(['status', '-A']).calls[0]?.slice(0, 3)).toEqual([
      'get',
      'smcpolicies.smc.dev',
      '--all-namespaces',
    ]);
    expect(plugin(['status']).calls[0]?.slice(0, 3)).toEqual(['get', 'smcpolicies.smc.dev', '-o']);
    expect(plugin(['status', '-A', '-o', 'json']).calls).toEqual([
      ['get', 'smcpolicies.smc.dev,smcnodes.smc.dev', '--all-namespaces', '-o', 'json'],
    ]);
  });

  it('status: both lists are shown even when one fails, and the exit code says so', () => {
    const r = plugin(['status'], { FAKE_KUBECTL_EXIT: '1' });
    expect(r.code).toBe(1);
    expect(r.calls).toHaveLength(2);
  });

  it('prints help, and rejects mistakes with exit 2 without calling kubectl', () => {
    for (const args of [['--help'], ['help'], [], ['connections', '-h']]) {
      const r = plugin(args);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/kubectl smc connections POD \[-n NAMESPACE\] \[-o table\|json\]/);
      expect(r.calls).toEqual([]);
    }
    const mistakes: [string[], RegExp][] = [
      [['connections'], /needs a POD/],
      [['connections', 'a', 'b'], /one POD/],
      [['connections', 'a', '-o', 'yaml'], /table or json/],
      [['connections', 'a', '-A'], /-A does not apply/],
      [['connections', 'a', '-n'], /-n needs a value/],
      [['connections', 'a', '--bogus'], /unknown flag --bogus/],
      [['status', '-A', '-n', 'x'], /not both/],
      [['status', 'extra'], /no arguments/],
      [['status', '-o', 'wide'], /json or yaml/],
      [['frobnicate'], /unknown command "frobnicate"/],
    ];
    for (const [args, message] of mistakes) {
      const r = plugin(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(message);
      expect(r.calls).toEqual([]);
    }
  });
});
