import { Command } from 'commander';
import { createServices } from '../../runtime/services.js';
import { printJson, withSignet } from '../runtime.js';
import { cliActor } from './certificates.js';

/** `signet acme …`: operator tasks for the ACME server. */
export function acmeCommand(): Command {
  const acme = new Command('acme').description('ACME server administration (External Account Binding keys)');
  const eab = acme.command('eab').description('External Account Binding keys for ACME clients (RFC 8555 §7.3.4)');
  eab
    .command('create')
    .description('create a one-time EAB key: give the kid and the HMAC key to the ACME client (e.g. lego --eab --kid … --hmac …)')
    .option('--profile <profile>', 'the ACME directory (profile) the key registers an account at (default: the first of SIGNET_ACME_PROFILES, /acme/directory)')
    .option('--json', 'print JSON')
    .action(async (o: { profile?: string; json?: boolean }) =>
      withSignet(async (ctx, env) => {
        const { acme: service } = createServices(ctx, env.config);
        const key = await service.createEabKey(o.profile, cliActor());
        if (o.json) printJson(key);
        else
          process.stdout.write(
            `kid: ${key.kid}\nhmacKey: ${key.hmacKey}\nprofile: ${key.profile}\n(the key works for one account registration, at the ${key.profile} ACME directory; store it now, it is not shown again)\n`,
          );
      }),
    );
  return acme;
}
