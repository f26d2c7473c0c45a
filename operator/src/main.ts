import { parseFlags, printUsage, UsageError, usageFailed } from '../../sidecar/src/args.js';
import { configFromFlags, OPERATOR_FLAG_SPECS, usage, type Config } from './config.js';
import { Operator } from './controller/operator.js';
import { ConfigError, errorMessage } from './errors.js';
import { createLogger } from './log.js';
import { loadKubeConfig, operatorOptions } from './options.js';

export const OPERATOR_USAGE = `usage: smc operator [flags]
  The operator: SmcPolicy and directory reconcilers, leader election, the injection webhook.
  Each flag also comes from its environment variable; a flag wins over it.
`;

/**
 * Runs the operator until SIGTERM/SIGINT. Resolves with the process exit code: 0 after a clean
 * shutdown (and for --help), 2 on bad flags, 1 when stopping fails.
 */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let config: Config;
  try {
    const args = parseFlags(argv, OPERATOR_FLAG_SPECS);
    if (args.help) return printUsage(`${OPERATOR_USAGE}${usage()}`);
    config = configFromFlags(args.flags, env);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) return usageFailed('smc operator', e);
    throw e;
  }
  const log = createLogger(config['log-level'], { identity: config.identity });
  const op = new Operator(loadKubeConfig(config.kubeconfig), operatorOptions(config), log);
  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      // The kubelet sends SIGTERM; Ctrl-C (SIGINT) at a terminal stops at once.
      const delayMs = signal === 'SIGTERM' ? config['shutdown-delay'] : 0;
      log.info({ signal, delayMs }, 'shutting down: not ready, Lease released, webhook answered meanwhile');
      // Endpoints and the API server's webhook routing drop this pod only after it turns unready:
      // closing the webhook at once would time out admissions still routed here.
      op.drain();
      // A stuck API call must not keep a terminating pod alive past its grace period.
      const force = setTimeout(() => resolve(1), delayMs + 15_000);
      force.unref();
      const stop = (): Promise<void> => op.stop();
      new Promise((r) => setTimeout(r, delayMs)).then(stop).then(
        () => resolve(0),
        (e: unknown) => {
          log.error({ err: errorMessage(e) }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });
  await op.start();
  log.info({ leaderElection: config['leader-elect'] }, 'operator started');
  return stopped;
}
