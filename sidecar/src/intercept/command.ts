import type { SidecarConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { InterceptApplier } from './applier.js';
import { nftCommandRunner, type NftRunner } from './nft.js';
import { interceptSpecFromConfig } from './rules.js';

/** `intercept install|remove`: run as root in the pod's netns (init container). */
export async function runInterceptCommand(
  action: 'install' | 'remove',
  cfg: SidecarConfig,
  log: Logger,
  runner: NftRunner = nftCommandRunner(),
): Promise<void> {
  const applier = new InterceptApplier(runner, log);
  if (action === 'install') await applier.install(interceptSpecFromConfig(cfg));
  else await applier.remove();
}
