// `npm run cluster`: the two-node Kubernetes cluster of test/cluster/harness/cluster.ts, kept up
// until Ctrl-C, for trying things by hand with kubectl.
//
//   npm run cluster [-- --image ARCHIVE ...] [--mem MIB] [--timeout SEC] [--keep]
//
// Without --image it imports dist/image/lab-apps.oci.tar and dist/image/smc-operator.oci.tar
// (`npm run image`), whichever exist.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  ClusterPrerequisiteError,
  ClusterStartError,
  startCluster,
  type Cluster,
} from './harness/cluster.js';

const REPO = new URL('../../../', import.meta.url).pathname;
const DEFAULT_IMAGES = ['lab-apps.oci.tar', 'smc-operator.oci.tar'].map((f) =>
  join(REPO, 'dist', 'image', f),
);

interface Args {
  images: string[];
  memMiB: number;
  timeoutSec: number;
  keep: boolean;
}

function usage(code: number): never {
  process.stdout.write(
    'usage: npm run cluster [-- --image ARCHIVE ...] [--mem MIB] [--timeout SEC] [--keep]\n',
  );
  process.exit(code);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { images: [], memMiB: 2048, timeoutSec: 600, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--image') a.images.push(argv[++i] ?? '');
    else if (arg === '--mem') a.memMiB = Number(argv[++i]);
    else if (arg === '--timeout') a.timeoutSec = Number(argv[++i]);
    else if (arg === '--keep') a.keep = true;
    else if (arg === '-h' || arg === '--help') usage(0);
    else {
      process.stderr.write(`cluster: unknown argument ${arg ?? ''}\n`);
      usage(2);
    }
  }
  if (a.images.length === 0) a.images = DEFAULT_IMAGES.filter((p) => existsSync(p));
  if (a.images.length === 0) {
    process.stderr.write(`cluster: no image archives (build them with npm run image, or pass --image)\n`);
    process.exit(2);
  }
  if (!(a.memMiB >= 256) || !(a.timeoutSec > 0)) usage(2);
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let cluster: Cluster | undefined;
  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write('\ncluster: stopping\n');
    void (cluster?.stop() ?? Promise.resolve()).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`cluster: stop failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  try {
    cluster = await startCluster({
      images: args.images,
      memMiB: args.memMiB,
      timeoutMs: args.timeoutSec * 1000,
      keep: args.keep,
    });
  } catch (err) {
    if (err instanceof ClusterPrerequisiteError || err instanceof ClusterStartError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  if (stopping) return;
  const n = cluster.nodeInfo;
  process.stdout.write(
    [
      '',
      `Cluster up in ${cluster.startupSec.toFixed(0)}s. API server ${cluster.apiServerUrl} (nodes reach it at 10.78.0.254).`,
      `  export KUBECONFIG=${cluster.kubeconfigPath}`,
      `  alias kubectl=${cluster.kubectlPath}   # same version as the cluster`,
      '  kubectl get nodes -o wide',
      `Nodes: ${n.map((x) => `${x.name} ${x.internalIp} (pods ${x.podCidr}, logs ${x.outDir}/logs)`).join('; ')}`,
      `Images imported on both nodes: ${args.images.join(', ')} (use imagePullPolicy: Never)`,
      `Control plane logs: ${cluster.controlPlane.dir}`,
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`cluster: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
