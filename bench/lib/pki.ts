/**
 * PKI fixtures made with openssl: the cached CSR pool, peer CAs with the same key types as
 * Signet's intermediates, `openssl ca` directories, and verification helpers.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR, must, pool, run } from './util.js';

export type KeyType = 'ecdsa-p256' | 'rsa-2048' | 'ed25519';

/** openssl genpkey arguments for a key type. */
export function genpkeyArgs(k: KeyType): string[] {
  if (k === 'ecdsa-p256') return ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  if (k === 'rsa-2048') return ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'];
  return ['-algorithm', 'ED25519'];
}

export interface CsrPool {
  csrs: string[];
  names: string[];
}

/**
 * N distinct ECDSA P-256 CSRs (CN = the single DNS SAN), made once with openssl and cached in
 * bench/.cache/csrs-<n>.json.
 */
export async function csrPool(n = 2000): Promise<CsrPool> {
  mkdirSync(CACHE_DIR, { recursive: true });
  const file = join(CACHE_DIR, `csrs-${n}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as CsrPool;
  process.stderr.write(`bench: generating ${n} ECDSA P-256 CSRs with openssl (cached in ${file})\n`);
  const names = Array.from({ length: n }, (_, i) => `host${i}.bench.test`);
  const csrs = await pool(
    names,
    4,
    async (name) =>
      (
        await must('openssl', [
          'req',
          '-new',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-keyout',
          '/dev/null',
          '-subj',
          `/CN=${name}`,
          '-addext',
          `subjectAltName=DNS:${name}`,
        ])
      ).stdout,
  );
  const p = { csrs, names };
  writeFileSync(file, JSON.stringify(p));
  return p;
}

export interface PeerCa {
  dir: string;
  cert: string;
  key: string;
  keyType: KeyType;
  responderCert: string;
  responderKey: string;
}

/** A self-signed CA (and a delegated OCSP responder certificate) with the given key type. */
export async function makePeerCa(dir: string, keyType: KeyType, cn = `bench peer CA ${keyType}`): Promise<PeerCa> {
  mkdirSync(dir, { recursive: true });
  const key = join(dir, 'ca-key.pem');
  const cert = join(dir, 'ca.pem');
  await must('openssl', ['genpkey', ...genpkeyArgs(keyType), '-out', key]);
  await must('openssl', [
    'req',
    '-x509',
    '-new',
    '-key',
    key,
    '-subj',
    `/CN=${cn}`,
    '-days',
    '3650',
    '-out',
    cert,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-addext',
    'subjectKeyIdentifier=hash',
  ]);
  const responderKey = join(dir, 'ocsp-key.pem');
  const responderCert = join(dir, 'ocsp.pem');
  const responderCsr = join(dir, 'ocsp.csr');
  await must('openssl', ['genpkey', ...genpkeyArgs(keyType), '-out', responderKey]);
  await must('openssl', ['req', '-new', '-key', responderKey, '-subj', `/CN=${cn} OCSP responder`, '-out', responderCsr]);
  const ext = join(dir, 'ocsp.ext');
  writeFileSync(ext, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\nnoCheck=ignored\n');
  await must('openssl', [
    'x509',
    '-req',
    '-in',
    responderCsr,
    '-CA',
    cert,
    '-CAkey',
    key,
    '-CAcreateserial',
    '-days',
    '30',
    '-extfile',
    ext,
    '-out',
    responderCert,
  ]);
  return { dir, cert, key, keyType, responderCert, responderKey };
}

/** An `openssl ca` directory (index.txt, random serials, leaf profile like Signet's server profile). */
export function opensslCaDir(dir: string, ca: PeerCa, opts: { days?: number } = {}): string {
  mkdirSync(join(dir, 'newcerts'), { recursive: true });
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'index.txt.attr'), 'unique_subject = no\n');
  writeFileSync(join(dir, 'crlnumber'), '01\n');
  const md = ca.keyType === 'ed25519' ? 'default' : 'sha256';
  const cnf = join(dir, 'ca.cnf');
  writeFileSync(
    cnf,
    `[ ca ]
default_ca = bench

[ bench ]
dir = ${dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = ${ca.cert}
private_key = ${ca.key}
rand_serial = yes
crlnumber = $dir/crlnumber
default_md = ${md}
default_days = ${opts.days ?? 90}
default_crl_days = 1
policy = policy_any
unique_subject = no
copy_extensions = copy
x509_extensions = leaf_ext
crl_extensions = crl_ext

[ policy_any ]
commonName = supplied

[ leaf_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ crl_ext ]
authorityKeyIdentifier = keyid
`,
  );
  return cnf;
}

/** `openssl verify` of leaf PEMs; returns how many verified. */
export async function verifyLeaves(
  leaves: string[],
  caFile: string,
  untrusted?: string,
  dir?: string,
): Promise<{ ok: number; total: number; firstFailure?: string }> {
  let ok = 0;
  let firstFailure: string | undefined;
  const base = dir ?? '/tmp';
  await pool(leaves, 4, async (pem, i) => {
    const f = join(base, `verify-${process.pid}-${i}.pem`);
    writeFileSync(f, pem);
    const args = ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', caFile, ...(untrusted ? ['-untrusted', untrusted] : []), f];
    const r = await run('openssl', args);
    if (r.code === 0 && /: OK\s*$/.test(r.stdout)) ok++;
    else firstFailure ??= (r.stdout + r.stderr).trim().slice(0, 400);
  });
  return { ok, total: leaves.length, firstFailure };
}
