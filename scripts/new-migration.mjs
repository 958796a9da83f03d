#!/usr/bin/env node
// Authors a migration for both providers with `prisma migrate diff`, offline.
// `prisma migrate dev` needs a shadow database (and, for PostgreSQL, a native engine), so instead
// each provider's folder keeps `schema.snapshot.prisma`: the schema as of the newest migration.
// The new migration is the diff from that snapshot to the current schema.
// Usage: npm run migration -- <name>
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, copyFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const name = process.argv[2];
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error('usage: npm run migration -- <name>   (lower-case letters, digits, underscores)');
  process.exit(2);
}
execFileSync(process.execPath, [join(root, 'scripts/build-schemas.mjs')], { stdio: 'inherit' });
const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
for (const provider of ['sqlite', 'postgresql']) {
  const dir = join(root, 'prisma', provider);
  const snapshot = join(dir, 'migrations', 'schema.snapshot.prisma');
  const from = existsSync(snapshot) ? ['--from-schema-datamodel', snapshot] : ['--from-empty'];
  // On this script's Node (see generate.mjs): prisma.config.ts loads the native SQLite driver.
  const sql = execFileSync(
    process.execPath,
    [join(root, 'node_modules/prisma/build/index.js'), 'migrate', 'diff', ...from, '--to-schema-datamodel', join(dir, 'schema.prisma'), '--script'],
    { cwd: root, env: { ...process.env, SIGNET_PRISMA_PROVIDER: provider }, encoding: 'utf8' },
  );
  if (/^-- This is an empty migration/m.test(sql)) {
    console.log(`${provider}: no changes`);
    continue;
  }
  const out = join(dir, 'migrations', `${stamp}_${name}`);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'migration.sql'), sql);
  writeFileSync(join(dir, 'migrations', 'migration_lock.toml'), `provider = "${provider}"\n`);
  copyFileSync(join(dir, 'schema.prisma'), snapshot);
  console.log(`${provider}: wrote ${out}/migration.sql`);
}
