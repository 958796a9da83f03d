#!/usr/bin/env node
// Generates both Prisma clients (SQLite and PostgreSQL) offline. Run by `npm run build`.
import { execFileSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
execFileSync(process.execPath, [join(root, 'scripts/build-schemas.mjs'), '--check'], { stdio: 'inherit' });
for (const provider of ['sqlite', 'postgresql']) {
  try {
    // On the Node running this script (24), not whichever `node` is first on PATH: prisma.config.ts
    // loads the native SQLite driver, which is built for one Node's module version.
    execFileSync(process.execPath, [join(root, 'node_modules/prisma/build/index.js'), 'generate', '--no-hints'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      env: { ...process.env, SIGNET_PRISMA_PROVIDER: provider, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
    });
  } catch (e) {
    // Prisma is chatty on success; only a failure is worth showing.
    process.stderr.write(`prisma generate (${provider}) failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    process.exit(1);
  }
}
