#!/usr/bin/node
/**
 * `smc`: the one entry point of the image. The operator, the node agent, the init container and
 * the sidecar are subcommands of one program, so one image and one PATH entry serve them all.
 */
import { readFileSync } from 'node:fs';
import { printUsage, usageFailed } from '../sidecar/src/args.js';
import { runIfEntryPoint } from '../sidecar/src/entry-point.js';

export const USAGE = `usage: smc <command> [flags]
  operator [flags]              the operator: reconcilers, leader election, injection webhook
  node-agent [flags]            the node agent: RDMA inventory, SmcNode, device plugin
  sidecar [--config FILE]       the per-pod SMC-R sidecar (uid 7609)
  intercept install|remove      the pod's nftables redirect rules (init container, NET_ADMIN)
  connections [-o table|json]   the sidecar's connections: SMC-R or TCP, and why (run in the pod)
  version                       print the version
Run "smc <command> --help" for a command's flags.
`;

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? 'unknown';
}

/** Dispatches argv (after the program name) and resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      return printUsage(USAGE);
    case 'version':
    case '--version':
      process.stdout.write(`${version()}\n`);
      return 0;
    case 'operator': {
      // Loaded lazily: each role pulls in only its own modules (and the addon only where it is used).
      const operator = await import('../operator/src/main.js');
      return operator.main(rest);
    }
    case 'sidecar':
    case 'node-agent':
    case 'intercept':
    case 'connections':
    case 'run': {
      const sidecar = await import('../sidecar/src/main.js');
      return sidecar.main(argv);
    }
    default:
      return usageFailed(
        'smc',
        command.startsWith('-') ? `unknown flag ${command}` : `unknown command "${command}"`,
      );
  }
}

runIfEntryPoint(import.meta.url, main, 'smc: ');
