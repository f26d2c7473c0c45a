export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type Command =
  | { kind: 'help' }
  | { kind: 'intercept'; action: 'install' | 'remove'; configFile: string | undefined }
  | { kind: 'run'; configFile: string | undefined }
  | { kind: 'node-agent'; args: readonly string[] };

export const USAGE = `usage: smc <command> [--config FILE]
  intercept install   install the nftables redirect rules in this network namespace (root)
  intercept remove    delete them
  sidecar | run       run the sidecar proxy
  node-agent ...      run the node agent
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
    default:
      throw new UsageError(`unknown command "${sub}"`);
  }
}
