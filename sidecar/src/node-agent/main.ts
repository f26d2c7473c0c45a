/**
 * Entry used by `smc node-agent` (sidecar/src/main.ts loads this module by path and calls `main`
 * with the arguments after the subcommand). `--help` prints the usage (exit 0); bad arguments print
 * the problem (exit 2), as every smc command does (sidecar/src/args.ts).
 */
import { ZodError } from 'zod';
import { UsageError, usageFailed } from '../args.js';
import { nodeAgentFlagOf, runNodeAgent } from './index.js';

const COMMAND = 'smc node-agent';

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    return await runNodeAgent(argv, env);
  } catch (err) {
    if (err instanceof UsageError) return usageFailed(COMMAND, err);
    if (err instanceof ZodError) {
      // Named as the user gives them (--rescan-interval, NODE_NAME), the first problem of each.
      const byOption = new Map<string, string>();
      for (const i of err.issues) {
        const name = i.path.length > 0 ? nodeAgentFlagOf(i.path[0] ?? '') : 'arguments';
        if (!byOption.has(name)) byOption.set(name, `${name}: ${i.message}`);
      }
      return usageFailed(COMMAND, [...byOption.values()].join('; '));
    }
    throw err;
  }
}
