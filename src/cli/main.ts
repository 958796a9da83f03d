import { Command, Option } from 'commander';
import { caCommand } from './commands/ca.js';
import { certificateCommands } from './commands/certificates.js';
import { revocationCommands } from './commands/revocation.js';
import { auditCommand, tokenCommand } from './commands/admin.js';
import { enrollCommand } from './commands/enroll.js';
import { groupCommand } from './commands/groups.js';
import { webhookCommand } from './commands/webhooks.js';
import { backupCommands } from './commands/backup.js';
import { acmeCommand } from './commands/acme.js';
import { cliEnv, fail, printJson, readSecret } from './runtime.js';
import { bootstrapIfEmpty, openSignet, prepareDataDir } from '../runtime/open.js';
import { refuseLostDatabase, setAsideForReinit, warnIfDataDirExposed, type Holdings } from '../runtime/data-dir.js';
import { openDatabase } from '../storage/database.js';
import { createStores } from '../storage/stores.js';
import { migrate } from '../storage/migrate.js';
import { resolveDatabase } from '../storage/database-url.js';
import { KEY_ALGORITHMS } from '../pki/keys.js';
import { listCas, takeOffline } from '../ca/hierarchy.js';
import { SignetError } from '../errors.js';
import { existsSync } from 'node:fs';

const program = new Command('signet')
  .description('Signet — a private certificate authority.\nSettings come from SIGNET_* environment variables (see README).')
  .showHelpAfterError('(run with --help for usage)')
  .configureOutput({ outputError: (str, write) => write(str) });

program
  .command('serve')
  .description('start the HTTP service (migrates and bootstraps on first start)')
  .action(async () => {
    const { serve } = await import('./serve.js');
    await serve();
  });

program
  .command('migrate')
  .description('apply database migrations and exit')
  .action(async () => {
    const { config } = cliEnv();
    prepareDataDir(config.dataDir);
    const target = resolveDatabase(config.DATABASE_URL, config.dataDir, config.SIGNET_SQLITE_SYNCHRONOUS);
    await refuseLostDatabase(config, target);
    const r = await migrate(target);
    process.stdout.write(r.applied.length ? `applied ${r.applied.join(', ')}\n` : 'database is up to date\n');
  });

program
  .command('init')
  .description('create the root and issuing intermediate CA and the admin token (if none exist)')
  .option('--root-subject <dn>', 'root subject DN (default SIGNET_ROOT_SUBJECT)')
  .addOption(new Option('--root-key <algorithm>', 'root key algorithm').choices(KEY_ALGORITHMS))
  .option('--intermediate-subject <dn>', 'intermediate subject DN')
  .addOption(new Option('--intermediate-key <algorithm>', 'intermediate key algorithm').choices(KEY_ALGORITHMS))
  .option('--offline-root <file>', 'export the root key, encrypted, to <file> and remove it from the online store')
  .option('--offline-root-passphrase-file <file>', 'file with the passphrase for --offline-root (else prompted)')
  .option(
    '--force',
    're-initialise a data directory whose database was lost: moves master.key and admin-token aside (renamed <name>.replaced-<timestamp>, never deleted) and creates a new CA; refused while the database holds a CA',
  )
  .option('--json', 'print JSON')
  .action(async (o) => {
    const env = cliEnv();
    const config = {
      ...env.config,
      ...(o.rootSubject ? { SIGNET_ROOT_SUBJECT: o.rootSubject } : {}),
      ...(o.rootKey ? { SIGNET_ROOT_KEY: o.rootKey } : {}),
      ...(o.intermediateSubject ? { SIGNET_INTERMEDIATE_SUBJECT: o.intermediateSubject } : {}),
      ...(o.intermediateKey ? { SIGNET_INTERMEDIATE_KEY: o.intermediateKey } : {}),
    };
    if (o.offlineRoot && config.SIGNET_KEY_STORE === 'pkcs11')
      throw new SignetError(
        'bad-request',
        '--offline-root exports the root key, but with SIGNET_KEY_STORE=pkcs11 CA keys never leave the token: keep the token offline instead, or create the hierarchy with the sealed store and move the intermediate key into the token (`signet ca move-key`)',
      );
    const passphrase = o.offlineRoot ? await readSecret(o.offlineRootPassphraseFile, 'Passphrase for the offline root key: ') : undefined;
    // Checked before anything is created: a hierarchy whose root failed to go offline could not be retried.
    if (passphrase !== undefined && passphrase.length < 12) throw new SignetError('bad-request', 'the offline root passphrase must be at least 12 characters');
    if (o.offlineRoot && existsSync(o.offlineRoot))
      throw new SignetError('conflict', `${o.offlineRoot} already exists; choose a new file for the offline root key`);
    prepareDataDir(config.dataDir);
    const target = resolveDatabase(config.DATABASE_URL, config.dataDir, config.SIGNET_SQLITE_SYNCHRONOUS);
    warnIfDataDirExposed(config, target, env.log);
    const moved = o.force ? await setAsideForReinit(config, target, () => countCasAndKeys(target)) : [];
    for (const [from, to] of moved) if (!o.json) process.stdout.write(`moved ${from} aside to ${to}\n`);
    const ctx = await openSignet(config, env.log, { publicUrl: 'record' });
    try {
      const boot = await bootstrapIfEmpty(ctx, config);
      if (!boot.created) throw new SignetError('conflict', 'a CA hierarchy already exists in this database; use `signet ca list`');
      const root = (await listCas(ctx)).find((c) => c.parentId === null)!;
      if (o.offlineRoot) {
        const { scrubWarning } = await takeOffline(ctx, root.id, o.offlineRoot, passphrase!, 'cli');
        if (scrubWarning) process.stderr.write(`warning: ${scrubWarning}\n`);
      }
      if (o.json)
        printJson({
          rootId: root.id,
          rootFingerprint: boot.rootFingerprint,
          tokenFile: boot.tokenFile,
          offlineRoot: o.offlineRoot ?? null,
          movedAside: moved.map(([from, to]) => ({ from, to })),
        });
      else {
        process.stdout.write(`root ${root.id} SHA-256 fingerprint: ${boot.rootFingerprint}\nadmin API token written to ${boot.tokenFile} (mode 0600)\n`);
        if (o.offlineRoot) process.stdout.write(`root key exported to ${o.offlineRoot} and removed from the online store\n`);
      }
    } finally {
      await ctx.db.close();
    }
  });

/** What --force must not throw away: CAs and sealed keys, counted on a database that has Signet's tables. */
async function countCasAndKeys(target: ReturnType<typeof resolveDatabase>): Promise<{ cas: number; keys: number }> {
  const db = await openDatabase(target);
  const holdings: Holdings = createStores(db).installation;
  try {
    return { cas: await holdings.count('cas'), keys: await holdings.count('keys') };
  } finally {
    await db.close();
  }
}

program.addCommand(caCommand());
for (const c of [
  ...certificateCommands(),
  ...revocationCommands(),
  tokenCommand(),
  enrollCommand(),
  groupCommand(),
  webhookCommand(),
  auditCommand(),
  ...backupCommands(),
  acmeCommand(),
])
  program.addCommand(c);

export async function main(argv = process.argv): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (e) {
    fail(e);
  }
}

await main();
