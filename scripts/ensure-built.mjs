#!/usr/bin/env node
// `npm start` builds only when needed: when dist/ is missing or older than any source file,
// schema or the lock file. `npm install` already built it (prepare script).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', '.build-stamp'); // written at the end of every build

function newest(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const entry of readdirSync(path)) {
    if (entry === 'generated') continue; // output of the build itself
    max = Math.max(max, newest(join(path, entry)));
  }
  return max;
}

const inputs = [join(root, 'src'), join(root, 'prisma'), join(root, 'package-lock.json'), join(root, 'tsconfig.json')];
const stale =
  !existsSync(built) ||
  !existsSync(join(root, 'src/storage/generated/sqlite/client.ts')) ||
  inputs.some((p) => existsSync(p) && newest(p) > statSync(built).mtimeMs);
if (stale) {
  process.stderr.write('signet: building (sources changed since the last build)…\n');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}
