// Java's PKIX CertPathValidator (test/interop/PkixCheck.java) as a fourth strict verifier, with
// revocation checking ON by default: OCSP at the certificates' AIA URLs, or their CRL
// distribution points (see PkixCheck.java for why each mode has no fallback to the other).
// Like the others in strict.ts it is required: CI installs a JRE (default-jre-headless), so a
// missing `java` is an error, never a skip.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Eku, VerifierResult } from './strict.js';

const INSTALL_HINT = 'install a JDK/JRE 17 or newer, e.g. apt-get install default-jre-headless';
const TIMEOUT = 120_000;

export type JavaRevocation = 'ocsp' | 'crl' | 'off';

export interface JavaVerifyOptions {
  /** Trust anchors, PEM. */
  roots: string[];
  /** Intermediates, PEM, leaf-most first. */
  intermediates: string[];
  /** The certificate to verify, PEM. */
  leaf: string;
  /** Defaults to 'server'. */
  eku?: Eku;
  /** Defaults to 'ocsp'. */
  revocation?: JavaRevocation;
}

export interface JavaResult extends VerifierResult {
  /** CertPathValidatorException's reason (e.g. REVOKED, UNDETERMINED_REVOCATION_STATUS) when rejected. */
  reason?: string;
  /** The index in the path (0 = leaf) of the certificate that failed, when rejected. */
  index?: number;
}

let compiled: string | undefined;

/**
 * javac PkixCheck.java once per process into a temp dir (a single-file `java X.java` launch
 * compiles on every call, a second or more each).
 */
function classDir(): string {
  if (compiled) return compiled;
  const src = fileURLToPath(new URL('../interop/PkixCheck.java', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'signet-java-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync('javac', ['-d', dir, src], { encoding: 'utf8', timeout: TIMEOUT });
  if (r.error) {
    // No javac (a JRE only): fall back to the single-file source launcher, which needs just `java`.
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') {
      compiled = '';
      return compiled;
    }
    throw new Error(`javac: ${r.error.message}`);
  }
  if (r.status !== 0) throw new Error(`javac ${src} failed:\n${r.stdout}${r.stderr}`);
  compiled = dir;
  return dir;
}

function java(args: string[]): { status: number | null; output: string } {
  const r = spawnSync('java', args, { encoding: 'utf8', timeout: TIMEOUT });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`Java PKIX verifier: java not found on PATH; ${INSTALL_HINT}`);
    throw new Error(`java: ${r.error.message}`);
  }
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

const pem = (p: string) => p.trim() + '\n';

/** Runs PkixCheck; a harness fault (exit 2: bad usage, unreadable file) throws, a rejection returns ok: false. */
export function verifyWithJava(o: JavaVerifyOptions): JavaResult {
  const revocation = o.revocation ?? 'ocsp';
  const dir = mkdtempSync(join(tmpdir(), 'signet-java-run-'));
  try {
    const args = ['--leaf', join(dir, 'leaf.pem'), '--revocation', revocation, '--eku', o.eku ?? 'server'];
    writeFileSync(join(dir, 'leaf.pem'), pem(o.leaf));
    o.roots.forEach((p, i) => {
      writeFileSync(join(dir, `root${i}.pem`), pem(p));
      args.push('--root', join(dir, `root${i}.pem`));
    });
    o.intermediates.forEach((p, i) => {
      writeFileSync(join(dir, `inter${i}.pem`), pem(p));
      args.push('--intermediate', join(dir, `inter${i}.pem`));
    });
    const classes = classDir();
    // CRL distribution points are fetched only with this property (read when the JDK's
    // certpath classes load, so it is set on the command line too).
    const jvm = ['-Dcom.sun.security.enableCRLDP=' + (revocation === 'crl')];
    const launch = classes ? [...jvm, '-cp', classes, 'PkixCheck'] : [...jvm, fileURLToPath(new URL('../interop/PkixCheck.java', import.meta.url))];
    const r = java([...launch, ...args]);
    if (r.status === 2 || (r.status !== 0 && r.status !== 1)) throw new Error(`Java PKIX harness failed (exit ${r.status}):\n${r.output}`);
    const m = /^INVALID reason=(\S+) index=(-?\d+)/m.exec(r.output);
    return {
      ok: r.status === 0 && /^VALID$/m.test(r.output),
      output: r.output,
      ...(m ? { reason: m[1], index: Number(m[2]) } : {}),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
