import type { Config } from '../config/config.js';
import type { CaContext } from '../ca/context.js';
import { Issuance } from '../ca/issuance.js';
import { IssuerRegistry } from '../ca/issuers.js';
import { loadProfiles } from '../ca/profiles.js';

/** The authority's services over one opened context; shared by `serve` and the CLI. */
export function createServices(ctx: CaContext, config: Pick<Config, 'SIGNET_PROFILES_FILE'>) {
  const issuers = new IssuerRegistry(ctx);
  const issuance = new Issuance(ctx, issuers, loadProfiles(config.SIGNET_PROFILES_FILE));
  return { issuers, issuance };
}
export type Services = ReturnType<typeof createServices>;
