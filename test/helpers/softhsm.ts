/**
 * A throw-away SoftHSM2 token per test process: its own SOFTHSM2_CONF and token directory in a
 * temp dir, initialised with softhsm2-util, removed at exit. One per process, made before the
 * first C_Initialize: SoftHSM2 reads its configuration and the token directory once, when the
 * module is initialised, so a token made later in the same process would not be seen.
 *
 * SIGNET_TEST_PKCS11=1 makes createTestEnv (env.ts) put every test environment's CA keys in this
 * token (SIGNET_KEY_STORE=pkcs11): the CI's third, tagged pass over the signing paths.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftHsm {
  dir: string;
  conf: string;
  label: string;
  pin: string;
  soPin: string;
  module: string;
  /** What a Signet process needs to use the token (SIGNET_KEY_STORE=pkcs11 and SOFTHSM2_CONF). */
  env: Record<string, string>;
  /** pkcs11-tool with the module and the login (the independent tool the tests check with). */
  tool(args: string[], opts?: { login?: boolean }): string;
  /** A further token in the same token directory (seen only by processes started after this). */
  initToken(label: string): void;
}

let current: SoftHsm | undefined;

export function softHsm(): SoftHsm {
  if (current) return current;
  const dir = mkdtempSync(join(tmpdir(), 'signet-softhsm-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  // Every SoftHSM2 user of this process (pkcs11js in the test process, signet children, the tools).
  process.env.SOFTHSM2_CONF = conf;
  const pin = 'hsm-Pin-7f3kQz91';
  const soPin = 'hsm-SO-Pin-q8Xw2';
  const label = `signet-test-${process.pid}`;
  const initToken = (l: string) =>
    void execFileSync('softhsm2-util', ['--init-token', '--free', '--label', l, '--so-pin', soPin, '--pin', pin], {
      env: { ...process.env, SOFTHSM2_CONF: conf },
      stdio: 'pipe',
    });
  initToken(label);
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  current = {
    dir,
    conf,
    label,
    pin,
    soPin,
    module: SOFTHSM_MODULE,
    env: { SIGNET_KEY_STORE: 'pkcs11', SIGNET_PKCS11_MODULE: SOFTHSM_MODULE, SIGNET_PKCS11_TOKEN: label, SIGNET_PKCS11_PIN: pin, SOFTHSM2_CONF: conf },
    tool: (args, opts = {}) =>
      execFileSync('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', label, ...(opts.login === false ? [] : ['--login', '--pin', pin]), ...args], {
        env: { ...process.env, SOFTHSM2_CONF: conf },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    initToken,
  };
  return current;
}

/** SIGNET_TEST_PKCS11=1: the tagged pass that runs the signing paths with CA keys in SoftHSM2. */
export const pkcs11Pass = process.env.SIGNET_TEST_PKCS11 === '1';

// A file in the tagged pass that never put a CA key in the token would pass without testing the
// token: it fails instead (this handler runs before the token directory's removal, registered later).
if (pkcs11Pass) {
  process.on('exit', () => {
    let keys = 0;
    try {
      keys = current ? (current.tool(['--list-objects', '--type', 'privkey']).match(/Private Key Object/g) ?? []).length : 0;
    } catch {
      keys = 0;
    }
    if (keys === 0) {
      process.stderr.write(
        `SIGNET_TEST_PKCS11=1, but ${process.argv[1] ?? 'this test file'} made no CA key in the SoftHSM2 token: it does not test the pkcs11 key store\n`,
      );
      process.exitCode = 1;
    }
  });
}
