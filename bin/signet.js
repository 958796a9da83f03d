#!/usr/bin/env node
// Entry point for `npx signet`. Runs the compiled CLI; `npm install` builds it (prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('signet: error: not built yet; run `npm run build` in the Signet directory\n');
  process.exit(1);
}
await import(main);
