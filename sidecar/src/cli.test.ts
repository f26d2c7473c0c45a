import { describe, expect, it } from 'vitest';
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
    expect(parseArgs(['node-agent', '--foo', 'bar'])).toEqual({ kind: 'node-agent', args: ['--foo', 'bar'] });
    expect(parseArgs([])).toEqual({ kind: 'help' });
  });

  it('rejects mistakes', () => {
    expect(() => parseArgs(['intercept'])).toThrow(UsageError);
    expect(() => parseArgs(['run', '--config'])).toThrow(/needs a file/);
    expect(() => parseArgs(['run', '--verbose'])).toThrow(/unknown argument/);
    expect(() => parseArgs(['serve'])).toThrow(/unknown command/);
  });
});
