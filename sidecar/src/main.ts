import { ConfigError } from './config/errors.js';
import { runIfEntryPoint } from './entry-point.js';
import { loadConfig } from './config/load.js';
import { runInterceptCommand } from './intercept/command.js';
import { createLogger } from './log.js';
import { runSidecar } from './run.js';
import { parseArgs, USAGE, UsageError } from './cli.js';

async function runNodeAgent(argv: readonly string[]): Promise<number> {
  // Loaded lazily: the node agent's modules (and the native addon they may load) stay out of the sidecar's path.
  const agent = await import('./node-agent/main.js');
  return agent.main(argv);
}

export async function main(argv: readonly string[]): Promise<number> {
  let cmd;
  try {
    cmd = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      const usage =
        argv[0] === 'connections' ? (await import('./ops/connections-cli.js')).CONNECTIONS_USAGE : USAGE;
      process.stderr.write(`${err.message}\n${usage}`);
      return 2;
    }
    throw err;
  }
  if (cmd.kind === 'help' && cmd.topic === 'connections') {
    const { CONNECTIONS_USAGE } = await import('./ops/connections-cli.js');
    process.stdout.write(CONNECTIONS_USAGE);
    return 0;
  }
  if (cmd.kind === 'help') {
    process.stdout.write(USAGE);
    return 0;
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
    await runInterceptCommand(cmd.action, cfg, log);
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
