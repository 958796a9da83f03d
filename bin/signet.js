#!/usr/bin/env node
// Entry point for `npx signet`. Runs the compiled CLI; `npm install` builds it (prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
// Checked before anything loads: on an older Node the native SQLite driver (built for Node 24's
// ABI) would fail with a module-version error that does not say what to do. npm scripts and npx
// find the Node 24 that `npm install` put in node_modules/.bin first on their PATH.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  const local = fileURLToPath(new URL('../node_modules/.bin/node', import.meta.url));
  process.stderr.write(
    `signet: error: Node.js 24 or newer is needed, this is ${process.version}; ` +
      (existsSync(local)
        ? `run it through npm (\`npm start\`, \`npx signet …\`) or as \`${local} ${fileURLToPath(import.meta.url)} …\`\n`
        : 'install Node.js 24, or run `npm install` in the Signet directory to get it from the npm registry\n'),
  );
  process.exit(1);
}
const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('signet: error: not built yet; run `npm run build` in the Signet directory\n');
  process.exit(1);
}
await import(main);
