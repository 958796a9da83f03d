import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function openssl(args: string[], input?: string | Buffer): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('openssl', args, { input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export class TempDir {
  readonly path = mkdtempSync(join(tmpdir(), 'signet-ossl-'));
  file(name: string, content?: string | Buffer): string {
    const p = join(this.path, name);
    if (content !== undefined) writeFileSync(p, content);
    return p;
  }
  remove() {
    rmSync(this.path, { recursive: true, force: true });
  }
}

/**
 * A self-signed CA certificate and its unencrypted key made by openssl (a CA from outside Signet,
 * for `signet ca import`): `newkey` is openssl req's key choice, e.g. ['-newkey', 'rsa:2048'].
 */
export function selfSignedCa(tmp: TempDir, name: string, newkey: readonly string[], subject: string): { key: string; cert: string } {
  const key = tmp.file(`${name}.key`);
  const cert = tmp.file(`${name}.pem`);
  const gen = openssl([
    'req',
    '-x509',
    ...newkey,
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-subj',
    subject,
    '-days',
    '30',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  assert.equal(gen.status, 0, gen.stderr);
  return { key, cert };
}

/**
 * CSRs for tests that only need distinct, valid requests: one P-256 key (made once), a new
 * CSR with the given subjectAltName each call, empty subject.
 */
/** A PEM CSR for a new P-256 key (written to `keyOut`, default thrown away) naming `cn` as its CN and DNS SAN. */
export function newKeyCsr(cn: string, keyOut = '/dev/null'): string {
  const r = openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyOut,
    '-subj',
    `/CN=${cn}`,
    '-addext',
    `subjectAltName=DNS:${cn}`,
  ]);
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return r.stdout;
}

export function csrMaker(tmp: TempDir): (san: string) => string {
  let sharedKey: string | undefined;
  let fileNo = 0;
  return (san) => {
    if (!sharedKey) {
      sharedKey = tmp.file('shared.key');
      const g = openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', sharedKey]);
      if (g.status !== 0) throw new Error(`openssl genpkey failed: ${g.stderr}`);
    }
    const out = tmp.file(`csr-${++fileNo}.pem`);
    const r = openssl(['req', '-new', '-key', sharedKey, '-subj', '/', '-addext', `subjectAltName=${san}`, '-out', out]);
    if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
    return readFileSync(out, 'utf8');
  };
}

export const serialValue = (hex: string): bigint => BigInt('0x' + hex);

/** `openssl crl -text` → CRL number and one text block per revoked serial (keyed by value). */
export function parseCrlText(text: string): { number: bigint; entries: Map<bigint, string> } {
  const m = /X509v3 CRL Number:\s*\n\s*(\S+)/.exec(text);
  assert.ok(m, `no CRL Number in:\n${text}`);
  const entries = new Map<bigint, string>();
  const body = (text.split(/Revoked Certificates:\n/)[1] ?? '').split(/\n\s+Signature Algorithm:/)[0]!;
  for (const block of body.split(/(?=\s+Serial Number: )/)) {
    const s = /Serial Number: ([0-9A-F]+)/.exec(block);
    if (s) entries.set(BigInt('0x' + s[1]), block);
  }
  return { number: BigInt(m[1]!), entries };
}
