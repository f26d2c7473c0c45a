/**
 * The one way `smc` and its roles (operator, node agent, sidecar, intercept, connections) read
 * their command line, on node:util's parseArgs:
 *
 *  - `--flag value` and `--flag=value` (a value starting with "-" only in the second form);
 *  - switches: `--flag` alone is true, `--flag=true` / `--flag=false` set it (no separate value);
 *  - short aliases where a flag declares one: `-o json`, `-ojson`, `-o=json`;
 *  - `-h` / `--help` anywhere: the caller prints its usage on stdout and exits 0 ({@link printUsage});
 *  - anything else (an unknown flag, a missing value, a stray argument) throws a {@link UsageError}:
 *    the caller prints it on stderr with a pointer to --help and exits 2 ({@link usageFailed}).
 *
 * Values come back as strings (booleans for switches); each role checks them with its own schema.
 * Dependency-free apart from Node, so the operator and the sidecar share it.
 */
import { parseArgs } from 'node:util';

/** Exit code of a command line that could not be parsed (and of invalid flag values). */
export const EXIT_USAGE = 2;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface FlagSpec {
  /** `string` takes a value; `switch` is a boolean that takes none or `=true` / `=false`. */
  readonly type: 'string' | 'switch';
  /** One-letter alias (`o` for `-o`). */
  readonly short?: string;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

/** The flags given on the command line (absent ones stay undefined: the caller has the defaults). */
export type FlagValues<S extends FlagSpecs> = {
  -readonly [K in keyof S]?: S[K]['type'] extends 'switch' ? boolean : string;
};

export interface ParsedArgs<S extends FlagSpecs> {
  /** `-h` / `--help` was given: nothing else was checked, print the usage. */
  readonly help: boolean;
  readonly flags: FlagValues<S>;
  readonly positionals: readonly string[];
}

export interface ParseOptions {
  /** How many positional arguments the command takes (default none). */
  readonly positionals?: number;
}

function switchValue(flag: string, value: string | undefined): boolean {
  if (value === undefined || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new UsageError(`${flag} takes true or false, not "${value}"`);
}

function stringValue(flag: string, value: string | undefined, inline: boolean): string {
  if (value === undefined) throw new UsageError(`${flag} needs a value`);
  // parseArgs takes the next argument whatever it is; "--port --verbose" is a forgotten value.
  if (!inline && value.startsWith('-') && value !== '-') {
    throw new UsageError(`${flag} needs a value, not ${value} (write ${flag}=${value} if that is the value)`);
  }
  return value;
}

/** Parses `argv` (the arguments after the command) against `specs`. Throws UsageError. */
export function parseFlags<S extends FlagSpecs>(
  argv: readonly string[],
  specs: S,
  opts: ParseOptions = {},
): ParsedArgs<S> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, spec] of Object.entries(specs)) {
    if (name === 'help') throw new Error('--help is every command’s own; no flag may be called so');
    options[name] = {
      type: spec.type === 'switch' ? 'boolean' : 'string',
      ...(spec.short === undefined ? {} : { short: spec.short }),
    };
  }
  // Not strict: the tokens are checked below, with messages of our own.
  const { tokens } = parseArgs({
    args: [...argv],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) {
    return { help: true, flags: {}, positionals: [] };
  }
  const flags: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'option-terminator') continue;
    if (t.kind === 'positional') {
      positionals.push(t.value);
      continue;
    }
    const spec = Object.hasOwn(specs, t.name) ? specs[t.name] : undefined;
    if (spec === undefined) throw new UsageError(`unknown flag ${t.rawName}`);
    let value = t.value;
    // "-o=json": parseArgs keeps the "=" of a short option's inline value.
    if (t.inlineValue === true && !t.rawName.startsWith('--') && value?.startsWith('='))
      value = value.slice(1);
    flags[t.name] =
      spec.type === 'switch'
        ? switchValue(t.rawName, value)
        : stringValue(t.rawName, value, t.inlineValue === true);
  }
  const max = opts.positionals ?? 0;
  if (positionals.length > max) throw new UsageError(`unexpected argument "${positionals[max] ?? ''}"`);
  return { help: false, flags: flags as FlagValues<S>, positionals };
}

/** `  --flag VALUE   help` lines with the help texts in one column. */
export function flagTable(rows: readonly (readonly [flag: string, help: string])[]): string {
  const width = Math.max(0, ...rows.map(([flag]) => flag.length));
  return rows.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}\n`).join('');
}

type Write = (text: string) => unknown;

/** Prints the usage on stdout; returns the exit code of --help (0). */
export function printUsage(usage: string, write: Write = (t) => process.stdout.write(t)): number {
  write(usage.endsWith('\n') ? usage : `${usage}\n`);
  return 0;
}

/**
 * Prints `<command>: <message>` and where the usage is on stderr; returns {@link EXIT_USAGE}.
 * `command` is how the user runs it (`smc node-agent`).
 */
export function usageFailed(
  command: string,
  problem: Error | string,
  write: Write = (t) => process.stderr.write(t),
): number {
  const message = typeof problem === 'string' ? problem : problem.message;
  write(`${command}: ${message}\nRun "${command} --help" for usage.\n`);
  return EXIT_USAGE;
}
