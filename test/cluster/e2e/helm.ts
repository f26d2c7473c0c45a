// The pinned helm (built by test/apiserver/tools/build-binaries.sh) against the test cluster,
// with its own config/cache/data dirs so nothing of the user's helm setup leaks in.
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expectedBinaries } from '../../apiserver/harness/binaries.js';

export class HelmError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly stderr: string,
  ) {
    super(`helm ${args.join(' ')} failed: ${stderr.trim().split('\n').slice(-5).join(' | ')}`);
    this.name = 'HelmError';
  }
}

export function helmRunner(kubeconfigPath: string, workDir: string) {
  const home = join(workDir, 'helm');
  for (const d of ['config', 'cache', 'data']) mkdirSync(join(home, d), { recursive: true });
  const bin = expectedBinaries().helm;
  return (args: string[], timeoutMs = 600_000): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(
        bin,
        args,
        {
          timeout: timeoutMs,
          maxBuffer: 64 * 1024 * 1024,
          env: {
            PATH: process.env['PATH'] ?? '/usr/bin:/bin',
            KUBECONFIG: kubeconfigPath,
            HELM_CONFIG_HOME: join(home, 'config'),
            HELM_CACHE_HOME: join(home, 'cache'),
            HELM_DATA_HOME: join(home, 'data'),
          },
        },
        (err, stdout, stderr) =>
          err ? reject(new HelmError(args, `${stderr}\n${err.message}`)) : resolve(stdout),
      );
    });
}
