// Strict, non-OpenSSL verifiers for certificates Signet issues: Go's
// crypto/x509, GnuTLS (certtool) and NSS (vfychain). OpenSSL is lenient about
// encodings and chain rules these reject, so passing `openssl verify` alone
// proves little. All three are required: CI installs them, so a missing tool
// is an error, never a skip.
import { AssertionError } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

export type Eku = 'server' | 'client' | 'any';

export interface StrictVerifyOptions {
  /** Trust anchors, PEM. */
  roots: string[];
  /** Intermediates, PEM, leaf-most first. */
  intermediates: string[];
  /** The certificate to verify, PEM. May be a CA certificate (use eku 'any'). */
  leaf: string;
  dns?: string;
  ip?: string;
  /** Defaults to 'server', as in Go's crypto/x509. */
  eku?: Eku;
}

export interface VerifierResult {
  ok: boolean;
  output: string;
}

export type StrictVerifier = 'go' | 'gnutls' | 'nss';

const INSTALL_HINT = 'install it with: apt-get install golang-go gnutls-bin libnss3-tools';
const TOOLS: Record<StrictVerifier, string[]> = { go: ['go'], gnutls: ['certtool'], nss: ['certutil', 'vfychain'] };
const EKU_OID = { server: '1.3.6.1.5.5.7.3.1', client: '1.3.6.1.5.5.7.3.2' } as const;
const TIMEOUT = 120_000;
const BUILD_TIMEOUT = 600_000;

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Which strict verifiers have their tools installed. */
export function strictVerifiers(): StrictVerifier[] {
  return (Object.keys(TOOLS) as StrictVerifier[]).filter((v) => TOOLS[v].every(onPath));
}

function requireTools(v: StrictVerifier): void {
  const missing = TOOLS[v].filter((b) => !onPath(b));
  if (missing.length) throw new Error(`strict verifier ${v}: ${missing.join(', ')} not found on PATH; ${INSTALL_HINT}`);
}

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv, timeout = TIMEOUT): { status: number | null; output: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout, env });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

/** Writes files into a fresh temp dir, hands their paths to fn, always cleans up. */
function withFiles<T>(files: Record<string, string>, fn: (dir: string, path: (name: string) => string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'signet-strict-'));
  try {
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    return fn(dir, (name) => join(dir, name));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const pems = (list: string[]) => list.map((p) => p.trim() + '\n').join('');

/** dns and ip are separate checks (each tool takes one name per run); [undefined] = no name check. */
const namesOf = (o: StrictVerifyOptions) => {
  const names = [o.dns, o.ip].filter((n): n is string => !!n);
  return names.length ? names : [undefined];
};

// ---- Go ------------------------------------------------------------------

const goBinaries = new Map<string, string>();

/** `go run` recompiles every call, so build test/interop/verify.go once per process. */
function goVerifier(): string {
  return goProgram('verify.go');
}

/** Builds test/interop/<file> (stdlib only) once per process; returns the binary's path. */
export function goProgram(file: string): string {
  const src = fileURLToPath(new URL(`../interop/${file}`, import.meta.url));
  const cached = goBinaries.get(src);
  if (cached) return cached;
  requireTools('go');
  const dir = mkdtempSync(join(tmpdir(), 'signet-go-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, file.replace(/\.go$/, ''));
  // Stdlib only and no network: never consult a module proxy or fetch a toolchain,
  // and ignore user go env files that could set GOFLAGS=-mod=mod.
  const env: NodeJS.ProcessEnv = { ...process.env, GOPROXY: 'off', GOTOOLCHAIN: 'local', GOENV: 'off', GOWORK: 'off', GOFLAGS: '' };
  if (!env.GOCACHE && !writable(homedir())) env.GOCACHE = join(tmpdir(), 'signet-go-cache');
  // A cold Go build cache compiles crypto/x509 and net first: minutes on a slow 2-core machine.
  const r = run('go', ['build', '-o', bin, src], env, BUILD_TIMEOUT);
  if (r.status !== 0) throw new Error(`go build ${src} failed:\n${r.output}`);
  goBinaries.set(src, bin);
  return bin;
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function verifyWithGo(o: StrictVerifyOptions): VerifierResult {
  const bin = goVerifier();
  return withFiles({ 'roots.pem': pems(o.roots), 'inter.pem': pems(o.intermediates), 'leaf.pem': pems([o.leaf]) }, (_, f) => {
    const args = ['-roots', f('roots.pem'), '-intermediates', f('inter.pem'), '-leaf', f('leaf.pem'), '-eku', o.eku ?? 'server'];
    if (o.dns) args.push('-dns', o.dns);
    if (o.ip) args.push('-ip', o.ip);
    const r = run(bin, args);
    return { ok: r.status === 0 && r.output === 'OK', output: r.output };
  });
}

// ---- GnuTLS --------------------------------------------------------------

export function verifyWithGnutls(o: StrictVerifyOptions): VerifierResult {
  requireTools('gnutls');
  const eku = o.eku ?? 'server';
  // certtool wants the chain leaf first, then intermediates.
  return withFiles({ 'roots.pem': pems(o.roots), 'chain.pem': pems([o.leaf, ...o.intermediates]) }, (_, f) => {
    const outputs: string[] = [];
    let ok = true;
    for (const name of namesOf(o)) {
      // medium profile = at least 112-bit security, the level GnuTLS says will become default.
      const args = ['--verify', '--verify-profile', 'medium', '--load-ca-certificate', f('roots.pem'), '--infile', f('chain.pem')];
      // --verify-hostname also matches IP SANs when given an address.
      if (name) args.push('--verify-hostname', name);
      if (eku !== 'any') args.push('--verify-purpose', EKU_OID[eku]);
      const r = run('certtool', args);
      outputs.push(r.output);
      ok &&= r.status === 0 && r.output.includes('Chain verification output: Verified');
    }
    return { ok, output: outputs.join('\n---\n') };
  });
}

// ---- NSS -----------------------------------------------------------------

// vfychain -u values (see `vfychain -h`).
const NSS_USAGE = { client: '0', server: '1', anyCA: '11' } as const;

function isCa(pem: string): boolean {
  try {
    return new X509Certificate(pem).ca;
  } catch {
    return false;
  }
}

/**
 * NSS via vfychain with the PKIX verifier (-pp). vfychain has no host-name
 * check, so dns/ip are NOT verified here (Go and GnuTLS cover them).
 * eku 'any' means "Any CA" usage for a CA certificate, else server or client.
 */
export function verifyWithNss(o: StrictVerifyOptions): VerifierResult {
  requireTools('nss');
  const files: Record<string, string> = { 'leaf.pem': pems([o.leaf]) };
  o.roots.forEach((p, i) => {
    files[`root${i}.pem`] = pems([p]);
  });
  o.intermediates.forEach((p, i) => {
    files[`inter${i}.pem`] = pems([p]);
  });
  return withFiles(files, (dir, f) => {
    const db = `sql:${dir}`;
    // A database that cannot be created is a harness fault, not a rejection.
    const init = run('certutil', ['-N', '-d', db, '--empty-password']);
    if (init.status !== 0) throw new Error(`certutil -N failed:\n${init.output}`);
    const setup: string[][] = [];
    o.roots.forEach((_, i) => {
      setup.push(['-A', '-d', db, '-n', `root${i}`, '-t', 'CT,C,C', '-a', '-i', f(`root${i}.pem`)]);
    });
    o.intermediates.forEach((_, i) => {
      setup.push(['-A', '-d', db, '-n', `inter${i}`, '-t', ',,', '-a', '-i', f(`inter${i}.pem`)]);
    });
    setup.push(['-A', '-d', db, '-n', 'leaf', '-t', ',,', '-a', '-i', f('leaf.pem')]);
    for (const args of setup) {
      // A certificate NSS cannot import (e.g. unparsable) is a rejection, not a harness error.
      const r = run('certutil', args);
      if (r.status !== 0) return { ok: false, output: `certutil ${args.join(' ')}\n${r.output}` };
    }
    const eku = o.eku ?? 'server';
    const usages = eku !== 'any' ? [NSS_USAGE[eku]] : isCa(o.leaf) ? [NSS_USAGE.anyCA] : [NSS_USAGE.server, NSS_USAGE.client];
    const certArgs = ['-a', f('leaf.pem'), ...o.intermediates.flatMap((_, i) => ['-a', f(`inter${i}.pem`)])];
    const outputs: string[] = [];
    if (o.dns || o.ip) outputs.push('note: vfychain cannot check host names; dns/ip not verified by NSS');
    for (const u of usages) {
      const r = run('vfychain', ['-d', db, '-pp', '-u', u, ...certArgs]);
      outputs.push(`usage ${u}: ${r.output}`);
      if (r.status === 0 && r.output.includes('Chain is good!')) return { ok: true, output: outputs.join('\n') };
    }
    return { ok: false, output: outputs.join('\n') };
  });
}

// ---- all three -----------------------------------------------------------

export const verifiers: Record<StrictVerifier, (o: StrictVerifyOptions) => VerifierResult> = {
  go: verifyWithGo,
  gnutls: verifyWithGnutls,
  nss: verifyWithNss,
};

/** Runs Go, GnuTLS and NSS; throws an AssertionError naming every verifier that rejected. */
export function assertStrictlyValid(t: TestContext, o: StrictVerifyOptions): void {
  const all = Object.keys(verifiers) as StrictVerifier[];
  const installed = strictVerifiers();
  const missing = all.filter((v) => !installed.includes(v));
  if (missing.length) {
    throw new Error(`strict verifiers not installed: ${missing.map((v) => `${v} (${TOOLS[v].join(', ')})`).join(', ')}; ${INSTALL_HINT}`);
  }
  const failures: string[] = [];
  for (const v of all) {
    const r = verifiers[v](o);
    if (r.ok) t.diagnostic(`${v}: accepted`);
    else failures.push(`${v} rejected:\n${r.output}`);
  }
  if (failures.length) {
    throw new AssertionError({ message: `certificate rejected by strict verifier(s):\n\n${failures.join('\n\n')}` });
  }
}
