/** The README is the newcomer's contract: every setting and every CLI command is documented there. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SETTINGS } from '../src/config/config.js';
import { signet } from './helpers/cli.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

test('README documents the two commands and every setting', () => {
  assert.match(readme, /npm install && npm start/);
  assert.match(readme, /npm test/);
  for (const key of Object.keys(SETTINGS)) assert.match(readme, new RegExp(`\\| \`${key}\` \\|`), `${key} is missing from the README table`);
});

test('README lists every top-level CLI command', () => {
  const help = signet(['--help'], {}).stdout;
  const section = help.slice(help.indexOf('Commands:'));
  const commands = [...section.matchAll(/^ {2}([a-z-]+)\b/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  assert.ok(commands.length >= 10, help);
  for (const c of commands) assert.match(readme, new RegExp(`\`${c}\\b`), `command ${c} is missing from the README`);
});
