/**
 * Entry used by `smc-sidecar node-agent` (sidecar/src/main.ts loads this module by path and calls
 * `main` with the arguments after the subcommand). Bad arguments print a message and return 2.
 */
import { ZodError } from 'zod';
import { runNodeAgent } from './index.js';

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    return await runNodeAgent(argv, env);
  } catch (err) {
    if (err instanceof ZodError) {
      const issues = err.issues.map((i) => `${i.path.join('.') || 'arguments'}: ${i.message}`).join('; ');
      process.stderr.write(`node-agent: ${issues}\n`);
      return 2;
    }
    if (err instanceof Error && err.message.startsWith('node-agent:')) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
