import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseArgs, UsageError } from './cli.js';

describe('parseArgs', () => {
  it('parses every subcommand', () => {
    expect(parseArgs(['intercept', 'install', '--config', '/c.json'])).toEqual({
      kind: 'intercept',
      action: 'install',
      configFile: '/c.json',
    });
    expect(parseArgs(['intercept', 'remove'])).toEqual({
      kind: 'intercept',
      action: 'remove',
      configFile: undefined,
    });
    expect(parseArgs(['run', '--config=/x.json'])).toEqual({ kind: 'run', configFile: '/x.json' });
    expect(parseArgs(['sidecar', '-c', '/y.json'])).toEqual({ kind: 'run', configFile: '/y.json' });
    expect(parseArgs(['intercept', '--config', '/c.json', 'remove'])).toMatchObject({ action: 'remove' });
    expect(parseArgs(['node-agent', '--foo', 'bar'])).toEqual({ kind: 'node-agent', args: ['--foo', 'bar'] });
    expect(parseArgs([])).toEqual({ kind: 'help' });
  });

  it('rejects mistakes', () => {
    expect(() => parseArgs(['intercept'])).toThrow(UsageError);
    expect(() => parseArgs(['run', '--config'])).toThrow(/--config needs a value/);
    expect(() => parseArgs(['run', '--verbose'])).toThrow(/^unknown flag --verbose$/);
    expect(() => parseArgs(['run', 'extra'])).toThrow(/unexpected argument "extra"/);
    expect(() => parseArgs(['intercept', 'install', 'remove'])).toThrow(/unexpected argument "remove"/);
    expect(() => parseArgs(['serve'])).toThrow(/unknown command/);
  });
});

describe('--help of every subcommand', () => {
  it('names its topic', () => {
    expect(parseArgs(['--help'])).toEqual({ kind: 'help' });
    expect(parseArgs(['sidecar', '--help'])).toEqual({ kind: 'help', topic: 'run' });
    expect(parseArgs(['run', '-h'])).toEqual({ kind: 'help', topic: 'run' });
    expect(parseArgs(['intercept', '--help'])).toEqual({ kind: 'help', topic: 'intercept' });
    expect(parseArgs(['intercept', 'install', '--nope', '-h'])).toEqual({ kind: 'help', topic: 'intercept' });
    expect(parseArgs(['connections', '--help'])).toEqual({ kind: 'help', topic: 'connections' });
    // The node agent parses its own arguments (node-agent/index.ts).
    expect(parseArgs(['node-agent', '--help'])).toEqual({ kind: 'node-agent', args: ['--help'] });
  });
});

describe('main: --help exits 0 with the usage on stdout, a bad command line 2 with the problem on stderr', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const { main } = await import('./main.js');
    let out = '';
    let err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((out += String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((err += String(chunk)), true));
    const code = await main(argv);
    vi.restoreAllMocks();
    return { code, out, err };
  }

  it.each([
    [['--help'], /^usage: smc <command>/],
    [['sidecar', '--help'], /^usage: smc sidecar \[--config FILE\]/],
    [['run', '-h'], /^usage: smc sidecar/],
    [['intercept', '--help'], /^usage: smc intercept install\|remove/],
    [['connections', '--help'], /^usage: smc connections/],
    [['node-agent', '--help'], /^usage: smc node-agent \[flags\][\s\S]*--rescan-interval SECONDS/],
  ])('%j prints its usage', async (argv, usage) => {
    const r = await run(argv);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(usage);
  });

  it.each([
    [['sidecar', '--verbose'], 'smc sidecar: unknown flag --verbose'],
    [['run', '--config'], 'smc run: --config needs a value'],
    [['intercept', 'install', '--nope'], 'smc intercept: unknown flag --nope'],
    [['intercept'], 'smc intercept: missing "install", "remove" or "sync"'],
    [['connections', '-o', 'yaml'], 'smc connections: --output must be "table" or "json", not "yaml"'],
    [['connections', 'pod-a'], 'smc connections: unexpected argument "pod-a"'],
    [['node-agent', '--nope'], 'smc node-agent: unknown flag --nope'],
    [['serve'], 'smc: unknown command "serve"'],
  ])('%j fails with exit code 2', async (argv, message) => {
    const r = await run(argv);
    expect(r).toMatchObject({ code: 2, out: '' });
    const command = message.slice(0, message.indexOf(':'));
    expect(r.err).toBe(`${message}\nRun "${command} --help" for usage.\n`);
  });
});
