import type { SidecarConfig } from '../config/schema.js';
import { identityFromConfig } from '../context.js';
import { directoryWatcherFor } from '../directory/watcher.js';
import type { Logger } from '../log.js';
import { InterceptApplier } from './applier.js';
import { nftCommandRunner, type NftRunner } from './nft.js';
import { interceptSpecFromConfig } from './rules.js';
import { PeerSetSync } from './sync.js';

export type InterceptAction = 'install' | 'remove' | 'sync';

/** Thrown by `intercept sync` when the configuration redirects everything: there is no set to keep. */
export class NothingToSyncError extends Error {
  constructor() {
    super('intercept.redirect is "all": there are no redirect sets to keep');
    this.name = 'NothingToSyncError';
  }
}

/**
 * `intercept install|remove`: run as root in the pod's netns (init container). `intercept sync`:
 * keeps the `redirect: peers` sets in step with the directory until `stopped` resolves (NET_ADMIN
 * only: it reads the directory, checks its signatures as the sidecar does, and runs nft).
 */
export async function runInterceptCommand(
  action: InterceptAction,
  cfg: SidecarConfig,
  log: Logger,
  runner: NftRunner = nftCommandRunner(),
  stopped: Promise<unknown> = new Promise(() => undefined),
): Promise<void> {
  const spec = interceptSpecFromConfig(cfg);
  if (action === 'install') return new InterceptApplier(runner, log).install(spec);
  if (action === 'remove') return new InterceptApplier(runner, log).remove();
  if (spec.redirect !== 'peers') throw new NothingToSyncError();
  const sync = new PeerSetSync(runner, identityFromConfig(cfg), log.child({ component: 'redirect-sets' }));
  const watcher = directoryWatcherFor(cfg, log);
  watcher.on('change', (directory) => void sync.update(directory));
  await watcher.start();
  // The watcher's own timers do not hold the process open (the sidecar's listeners do): this one does.
  const alive = setInterval(() => undefined, 1 << 30);
  await stopped;
  clearInterval(alive);
  watcher.stop();
  sync.stop();
  await sync.idle();
}
