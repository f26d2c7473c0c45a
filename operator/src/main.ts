import { parseConfig, usage, type Config } from './config.js';
import { Operator } from './controller/operator.js';
import { ConfigError, errorMessage } from './errors.js';
import { createLogger } from './log.js';
import { loadKubeConfig, operatorOptions } from './options.js';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`usage: node dist/operator/src/main.js [flags]\n${usage()}\n`);
    return;
  }
  let config: Config;
  try {
    config = parseConfig(argv, process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`smc-operator: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const log = createLogger(config['log-level'], { identity: config.identity });
  const op = new Operator(loadKubeConfig(config.kubeconfig), operatorOptions(config), log);
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    op.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        log.error({ err: errorMessage(e) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await op.start();
  log.info({ leaderElection: config['leader-elect'] }, 'operator started');
}

main().catch((e: unknown) => {
  process.stderr.write(`smc-operator: ${errorMessage(e)}\n`);
  process.exit(1);
});
