import { parseFlags, UsageError, type FlagSpecs } from './args.js';

export { UsageError };

/** The subcommands with a usage of their own (`smc <topic> --help`). */
export type HelpTopic = 'run' | 'intercept' | 'connections';

export type Command =
  | { kind: 'help'; topic?: HelpTopic }
  | { kind: 'intercept'; action: 'install' | 'remove' | 'sync'; configFile: string | undefined }
  | { kind: 'run'; configFile: string | undefined }
  | { kind: 'node-agent'; args: readonly string[] }
  | { kind: 'connections'; output: 'table' | 'json'; adminPort: number | undefined };

export const USAGE = `usage: smc <command> [--config FILE]
  intercept install   install the nftables redirect rules in this network namespace (root)
  intercept remove    delete them
  intercept sync      keep the redirect sets of intercept.redirect=peers in step with the directory
  sidecar | run       run the sidecar proxy
  node-agent ...      run the node agent
  connections [-o table|json] [--admin-port N]   list the sidecar's connections (run in the pod)
Config: --config FILE or $SMC_CONFIG_FILE (JSON), overridden by SMC_* environment variables.
`;

const CONFIG_HELP = `  -c, --config FILE   JSON configuration (default $SMC_CONFIG_FILE), overridden by SMC_* environment variables
`;

export const RUN_USAGE = `usage: smc sidecar [--config FILE]   (also: smc run)
  Runs the per-pod SMC-R sidecar proxy (uid 7609) until SIGTERM.
${CONFIG_HELP}`;

export const INTERCEPT_USAGE = `usage: smc intercept install|remove|sync [--config FILE]
  Installs (or deletes) the nftables rules that redirect the pod's TCP traffic to the sidecar, in
  this network namespace (the init container; needs NET_ADMIN). With intercept.redirect=peers,
  \`sync\` then keeps the sets of redirected peers in step with the directory until SIGTERM.
${CONFIG_HELP}`;

const CONFIG_FLAGS = { config: { type: 'string', short: 'c' } } as const satisfies FlagSpecs;

const CONNECTIONS_FLAGS = {
  output: { type: 'string', short: 'o' },
  'admin-port': { type: 'string' },
} as const satisfies FlagSpecs;

function connectionsOptions(args: readonly string[]): Command {
  const a = parseFlags(args, CONNECTIONS_FLAGS);
  if (a.help) return { kind: 'help', topic: 'connections' };
  const output = a.flags.output ?? 'table';
  if (output !== 'table' && output !== 'json') {
    throw new UsageError(`--output must be "table" or "json", not "${output}"`);
  }
  let adminPort: number | undefined;
  const port = a.flags['admin-port'];
  if (port !== undefined) {
    adminPort = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
    if (!(adminPort >= 1 && adminPort <= 65535)) {
      throw new UsageError(`--admin-port needs a port number, not "${port}"`);
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
      const a = parseFlags(rest, CONFIG_FLAGS, { positionals: 1 });
      if (a.help) return { kind: 'help', topic: 'intercept' };
      const [action] = a.positionals;
      if (action !== 'install' && action !== 'remove' && action !== 'sync') {
        throw new UsageError('missing "install", "remove" or "sync"');
      }
      return { kind: 'intercept', action, configFile: a.flags.config };
    }
    case 'run':
    case 'sidecar': {
      const a = parseFlags(rest, CONFIG_FLAGS);
      if (a.help) return { kind: 'help', topic: 'run' };
      return { kind: 'run', configFile: a.flags.config };
    }
    case 'node-agent':
      return { kind: 'node-agent', args: rest };
    case 'connections':
      return connectionsOptions(rest);
    default:
      throw new UsageError(`unknown command "${sub}"`);
  }
}
