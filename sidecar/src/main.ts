import { ConfigError } from './config/errors.js';
import { runIfEntryPoint } from './entry-point.js';
import { loadConfig } from './config/load.js';
import { NothingToSyncError, runInterceptCommand } from './intercept/command.js';
import { createLogger } from './log.js';
import { runSidecar } from './run.js';
import { printUsage, usageFailed } from './args.js';
import { INTERCEPT_USAGE, parseArgs, RUN_USAGE, USAGE, UsageError } from './cli.js';

async function runNodeAgent(argv: readonly string[]): Promise<number> {
  // Loaded lazily: the node agent's modules (and the native addon they may load) stay out of the sidecar's path.
  const agent = await import('./node-agent/main.js');
  return agent.main(argv);
}

/** How the user ran a subcommand, for its messages: `smc sidecar`, `smc intercept`, or `smc`. */
function commandName(sub: string | undefined): string {
  const subcommands = ['sidecar', 'run', 'intercept', 'connections'];
  return sub !== undefined && subcommands.includes(sub) ? `smc ${sub}` : 'smc';
}

export async function main(argv: readonly string[]): Promise<number> {
  let cmd;
  try {
    cmd = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) return usageFailed(commandName(argv[0]), err);
    throw err;
  }
  if (cmd.kind === 'help') {
    switch (cmd.topic) {
      case 'connections':
        return printUsage((await import('./ops/connections-cli.js')).CONNECTIONS_USAGE);
      case 'run':
        return printUsage(RUN_USAGE);
      case 'intercept':
        return printUsage(INTERCEPT_USAGE);
      case undefined:
        return printUsage(USAGE);
    }
  }
  if (cmd.kind === 'node-agent') return runNodeAgent(cmd.args);
  if (cmd.kind === 'connections') {
    // A client of the running sidecar's admin endpoint: no config is loaded (the port comes from
    // --admin-port or $SMC_PORT_ADMIN, which the sidecar's container has).
    const { runConnectionsCommand } = await import('./ops/connections-cli.js');
    return runConnectionsCommand({ output: cmd.output, adminPort: cmd.adminPort });
  }

  let cfg;
  try {
    cfg = loadConfig({ file: cmd.configFile });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 78; // EX_CONFIG
    }
    throw err;
  }
  const log = createLogger(cfg.logLevel);
  if (cmd.kind === 'intercept') {
    const stopped = new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        log.info({ signal }, 'stopping');
        resolve();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    try {
      await runInterceptCommand(cmd.action, cfg, log, undefined, stopped);
    } catch (err) {
      if (!(err instanceof NothingToSyncError)) throw err;
      process.stderr.write(`${err.message}\n`);
      return 78; // EX_CONFIG
    }
    return 0;
  }
  const sidecar = await runSidecar(cfg, log);
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await sidecar.stop();
  return 0;
}

runIfEntryPoint(import.meta.url, main);
