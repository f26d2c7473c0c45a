import type { Logger } from '../log.js';
import type { NftRunner } from './nft.js';
import { type InterceptSpec, installScript, NFT_FAMILY, NFT_TABLE, removeScript } from './rules.js';

/** Installs and removes the interception table in the current network namespace. */
export class InterceptApplier {
  constructor(
    private readonly run: NftRunner,
    private readonly log: Logger,
  ) {}

  async install(spec: InterceptSpec): Promise<void> {
    await this.run(installScript(spec));
    this.log.info({ table: `${NFT_FAMILY} ${NFT_TABLE}`, spec }, 'interception rules installed');
  }

  async remove(): Promise<void> {
    await this.run(removeScript());
    this.log.info({ table: `${NFT_FAMILY} ${NFT_TABLE}` }, 'interception rules removed');
  }
}
