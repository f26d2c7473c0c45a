export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type Command =
  | { kind: 'help'; topic?: 'connections' }
  | { kind: 'intercept'; action: 'install' | 'remove'; configFile: string | undefined }
  | { kind: 'run'; configFile: string | undefined }
  | { kind: 'node-agent'; args: readonly string[] }
  | { kind: 'connections'; output: 'table' | 'json'; adminPort: number | undefined };

export const USAGE = `usage: smc <command> [--config FILE]
  intercept install   install the nftables redirect rules in this network namespace (root)
  intercept remove    delete them
  sidecar | run       run the sidecar proxy
  node-agent ...      run the node agent
  connections [-o table|json] [--admin-port N]   list the sidecar's connections (run in the pod)
Config: --config FILE or $SMC_CONFIG_FILE (JSON), overridden by SMC_* environment variables.
`;

function configOption(args: readonly string[]): string | undefined {
  let file: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--config' || a === '-c') {
      file = args[i + 1];
      if (file === undefined) throw new UsageError(`${a} needs a file`);
      i++;
    } else if (a.startsWith('--config=')) {
      file = a.slice('--config='.length);
    } else {
      throw new UsageError(`unknown argument "${a}"`);
    }
  }
  return file;
}

function connectionsOptions(args: readonly string[]): Command {
  let output: 'table' | 'json' = 'table';
  let adminPort: number | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '-h' || a === '--help') return { kind: 'help', topic: 'connections' };
    let name: string;
    let value: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      name = a.slice(0, eq);
      value = a.slice(eq + 1);
    } else if (a.startsWith('-o') && a.length > 2 && !a.startsWith('--')) {
      name = '-o';
      value = a.slice(a[2] === '=' ? 3 : 2);
    } else {
      name = a;
      if (name === '-o' || name === '--output' || name === '--admin-port') {
        value = args[i + 1];
        if (value === undefined) throw new UsageError(`${name} needs a value`);
        i++;
      }
    }
    if (name === '-o' || name === '--output') {
      if (value !== 'table' && value !== 'json') {
        throw new UsageError(`${name} must be "table" or "json", not "${value ?? ''}"`);
      }
      output = value;
    } else if (name === '--admin-port') {
      const n = /^\d{1,5}$/.test(value ?? '') ? Number(value) : NaN;
      if (!(n >= 1 && n <= 65535)) {
        throw new UsageError(`--admin-port needs a port number, not "${value ?? ''}"`);
      }
      adminPort = n;
    } else {
      throw new UsageError(`unknown argument "${a}"`);
    }
  }
  return { kind: 'connections', output, adminPort };
}

/** Pure: argv (after the script) to a command. */
export function parseArgs(argv: readonly string[]): Command {
  const [sub, ...rest] = argv;
  switch (sub) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      return { kind: 'help' };
    case 'intercept': {
      const [action, ...opts] = rest;
      if (action !== 'install' && action !== 'remove') {
        throw new UsageError('intercept needs "install" or "remove"');
      }
      return { kind: 'intercept', action, configFile: configOption(opts) };
    }
    case 'run':
      return { kind: 'run', configFile: configOption(rest) };
    case 'node-agent':
      return { kind: 'node-agent', args: rest };
    case 'connections':
      return connectionsOptions(rest);
    default:
      throw new UsageError(`unknown command "${sub}"`);
  }
}
