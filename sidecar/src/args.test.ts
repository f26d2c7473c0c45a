import { describe, expect, it } from 'vitest';
import {
  EXIT_USAGE,
  flagTable,
  parseFlags,
  printUsage,
  UsageError,
  usageFailed,
  type FlagSpecs,
} from './args.js';

const SPECS = {
  port: { type: 'string' },
  output: { type: 'string', short: 'o' },
  'device-plugin': { type: 'switch' },
} as const satisfies FlagSpecs;

describe('parseFlags', () => {
  it('reads --flag value and --flag=value', () => {
    expect(parseFlags(['--port', '80', '--output=json'], SPECS)).toEqual({
      help: false,
      flags: { port: '80', output: 'json' },
      positionals: [],
    });
    // An empty value, and a value starting with "-" in the = form.
    expect(parseFlags(['--port=', '--output=-x'], SPECS).flags).toEqual({ port: '', output: '-x' });
    // The last one wins.
    expect(parseFlags(['--port=1', '--port=2'], SPECS).flags).toEqual({ port: '2' });
  });

  it('reads short aliases in all three spellings', () => {
    for (const args of [['-o', 'json'], ['-ojson'], ['-o=json']]) {
      expect(parseFlags(args, SPECS).flags, args.join(' ')).toEqual({ output: 'json' });
    }
  });

  it('reads switches alone or with =true / =false, and types the result', () => {
    expect(parseFlags(['--device-plugin'], SPECS).flags).toEqual({ 'device-plugin': true });
    expect(parseFlags(['--device-plugin=false'], SPECS).flags).toEqual({ 'device-plugin': false });
    expect(parseFlags(['--device-plugin=1'], SPECS).flags).toEqual({ 'device-plugin': true });
    const flags = parseFlags([], SPECS).flags;
    const on: boolean | undefined = flags['device-plugin'];
    const port: string | undefined = flags.port;
    expect([on, port]).toEqual([undefined, undefined]);
  });

  it('answers --help / -h wherever it stands, before checking anything else', () => {
    for (const args of [['--help'], ['-h'], ['--port', '1', '--help'], ['--nope', '-h', 'stray']]) {
      expect(parseFlags(args, SPECS), args.join(' ')).toEqual({ help: true, flags: {}, positionals: [] });
    }
  });

  it('takes positional arguments only where the command has them', () => {
    expect(parseFlags(['install', '--port=1'], SPECS, { positionals: 1 })).toEqual({
      help: false,
      flags: { port: '1' },
      positionals: ['install'],
    });
    // After "--" everything is positional.
    expect(parseFlags(['--', '--port'], SPECS, { positionals: 1 }).positionals).toEqual(['--port']);
    expect(() => parseFlags(['install'], SPECS)).toThrow(/^unexpected argument "install"$/);
    expect(() => parseFlags(['a', 'b'], SPECS, { positionals: 1 })).toThrow(/unexpected argument "b"/);
  });

  it('rejects unknown flags, missing values and bad switch values with a UsageError', () => {
    const cases: [string[], RegExp][] = [
      [['--nope'], /^unknown flag --nope$/],
      [['--nope=1'], /^unknown flag --nope$/],
      [['-x'], /^unknown flag -x$/],
      [['--port'], /^--port needs a value$/],
      [['-o'], /^-o needs a value$/],
      [['--port', '--output=json'], /--port needs a value, not --output=json/],
      [['--device-plugin=maybe'], /^--device-plugin takes true or false, not "maybe"$/],
      // A switch takes no separate value: "false" is a stray argument.
      [['--device-plugin', 'false'], /^unexpected argument "false"$/],
      // Inherited object keys are no flags.
      [['--constructor=1'], /^unknown flag --constructor$/],
    ];
    for (const [args, message] of cases) {
      expect(() => parseFlags(args, SPECS), args.join(' ')).toThrow(UsageError);
      expect(() => parseFlags(args, SPECS), args.join(' ')).toThrow(message);
    }
  });

  it('refuses a flag named help (every command has its own)', () => {
    expect(() => parseFlags([], { help: { type: 'switch' } })).toThrow(/help/);
  });
});

describe('usage output', () => {
  it('--help: the usage on stdout, exit 0', () => {
    const out: string[] = [];
    expect(printUsage('usage: smc x', (t) => out.push(t))).toBe(0);
    expect(out).toEqual(['usage: smc x\n']);
  });

  it('a usage error: the command, the message and where the usage is on stderr, exit 2', () => {
    const err: string[] = [];
    expect(usageFailed('smc node-agent', new UsageError('unknown flag --x'), (t) => err.push(t))).toBe(2);
    expect(EXIT_USAGE).toBe(2);
    expect(err.join('')).toBe('smc node-agent: unknown flag --x\nRun "smc node-agent --help" for usage.\n');
  });

  it('aligns the flag table', () => {
    expect(
      flagTable([
        ['--a', 'first'],
        ['--longer N', 'second'],
      ]),
    ).toBe('  --a         first\n  --longer N  second\n');
  });
});
