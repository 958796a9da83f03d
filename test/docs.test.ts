/** The README is the newcomer's contract: every setting and every CLI command is documented there. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SETTINGS } from '../src/config/config.js';
import { BIN, freePort, ROOT, signet } from './helpers/cli.js';
import { childEnv } from './helpers/env.js';

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

/**
 * The Quick start and "Issue your first certificate", run as written, in order, by bash against
 * a real server started (as `npm start` does) in an empty directory: a command that stops the
 * newcomer fails this test, so the README cannot drift from what Signet does. Two things differ
 * from a terminal, both stated here: the server is started by the test (the README's
 * `npm install && npm start` block, checked to be there) on a free port instead of 8080, and
 * `npx signet` runs bin/signet.js directly (what npx runs, without npm's first-use install of
 * the package into its cache). The script itself waits for /readyz before reading the token.
 */
test('README quick start and first certificate run as written', { timeout: 90_000 }, async () => {
  const section = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## Interfaces'));
  const blocks = [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
  assert.equal(blocks[0]!.trim(), 'npm install && npm start', 'the quick start begins with the one command');
  // `npm test` is the one block not part of the walk-through (this test is part of it).
  assert.equal(blocks.filter((b) => b.trim() === 'npm test').length, 1);
  const steps = blocks.slice(1).filter((b) => b.trim() !== 'npm test');
  assert.ok(steps.length >= 5, `expected the quick start's commands, found ${steps.length} blocks`);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'signet-readme-'));
  const script = [
    'set -eo pipefail',
    `npx() { if [ "$1" = signet ]; then shift; node ${JSON.stringify(join(ROOT, 'bin', 'signet.js'))} "$@"; else command npx "$@"; fi; }`,
    ...steps.map((b) => b.replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`)),
  ].join('\n');
  const env = childEnv({ PATH: `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH}`, SIGNET_PORT: String(port), SIGNET_LOG_LEVEL: 'warn' });
  // As `npm start` runs it: from the directory, with ./data as the data directory.
  const server = spawn(process.execPath, [BIN, 'serve'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let serverOut = '';
  server.stdout.on('data', (d) => (serverOut += d));
  server.stderr.on('data', (d) => (serverOut += d));
  const exited = new Promise((resolve) => server.on('exit', resolve));
  try {
    // The CLI steps get no SIGNET_PORT: they must find the server's public URL in the database.
    const { SIGNET_PORT: _p, ...cliEnv } = env;
    const r = await new Promise<{ status: number | null; out: string }>((resolve) => {
      const sh = spawn('bash', ['-c', script], { cwd: dir, env: cliEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      sh.stdout.on('data', (d) => (out += d));
      sh.stderr.on('data', (d) => (out += d));
      sh.on('close', (status) => resolve({ status, out }));
    });
    assert.equal(r.status, 0, `a README command failed:\n${r.out}\n--- server:\n${serverOut}`);
    // What the prose says the commands show.
    assert.match(r.out, /web\.pem: OK/, r.out);
    assert.match(r.out, /web\.pem: revoked/, r.out);
    assert.match(r.out, /Reason: keyCompromise/, r.out);
    const serial = JSON.parse(readFileSync(join(dir, 'web.json'), 'utf8')).serial as string;
    assert.match(r.out, new RegExp(`Serial Number: ${serial.toUpperCase()}`), 'the CRL lists the revoked certificate');
    // The CLI-issued certificate names the server's URLs, not the CLI's default port 8080.
    const aia = execFileSync('openssl', ['x509', '-in', join(dir, 'app.pem'), '-noout', '-ext', 'authorityInfoAccess'], { encoding: 'utf8' });
    assert.match(aia, new RegExp(`OCSP - URI:http://127\\.0\\.0\\.1:${port}/ocsp`), aia);
  } finally {
    server.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
});
