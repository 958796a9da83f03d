import { closeSync, fchmodSync, openSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { Command, Option } from 'commander';
import { SignetError } from '../../errors.js';
import { GENERATED_KEY_ALGORITHMS, generateKey, type GeneratedKeyAlgorithm } from '../../pki/keys.js';
import { buildCsr, parseSanArg } from '../../pki/csr-builder.js';
import { fromPem, toPem } from '../../pki/certificate.js';
import { buildPkcs12 } from '../../pki/pkcs12.js';
import { getCertificate, listCertificates, type CertStatus } from '../../ca/inventory.js';
import { findAtRisk } from '../../ca/expiry-alerts.js';
import type { IssuedCertificate, Requester } from '../../ca/issuance.js';
import { actorOf, visibility, type Principal } from '../../ca/authorization.js';
import { createServices } from '../../runtime/services.js';
import { printJson, printTable, readSecret, withSignet } from '../runtime.js';

/** The operator at the CLI on the CA host: it holds the database and the master key, so no limits apply. */
export const cliPrincipal = (): Principal => ({ kind: 'operator', actor: `cli:${userInfo().username}` });
export const cliRequester = (): Requester => ({ principal: cliPrincipal() });
export const cliActor = (): string => actorOf(cliPrincipal());

export function writeSecretFile(path: string, data: string | Buffer): void {
  // `mode` only applies when the file is created: tighten an existing file before the key goes in.
  const fd = openSync(path, 'w', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeFileSync(fd, data);
  } finally {
    closeSync(fd);
  }
}

/** Output files are written after the certificate is stored: refuse up front what could not be written
 * (a generated key lost after issuance leaves a certificate nobody can use). */
function checkOutputs(o: Record<string, unknown>): void {
  for (const [opt, name] of [
    ['out', '--out'],
    ['chainOut', '--chain-out'],
    ['keyOut', '--key-out'],
    ['p12', '--p12'],
  ] as const) {
    const file = o[opt];
    if (typeof file !== 'string') continue;
    const dir = dirname(resolve(file));
    let ok = false;
    try {
      ok = statSync(dir).isDirectory();
    } catch {
      /* missing */
    }
    if (!ok) throw new SignetError('bad-request', `cannot write ${name} ${file}: directory ${dir} does not exist`);
  }
}

/** A CSR file as parseCsr takes it: PEM text as is, anything else as DER bytes. */
function readCsrFile(file: string): string | Buffer {
  const raw = readFileSync(file);
  return raw.includes('-----BEGIN') ? raw.toString('utf8') : raw;
}

function emit(cert: IssuedCertificate, o: { out?: string; chainOut?: string; json?: boolean }, extra: Record<string, unknown> = {}): void {
  if (o.out) writeFileSync(o.out, o.chainOut ? cert.certificate : cert.certificate + cert.chain);
  if (o.chainOut) writeFileSync(o.chainOut, cert.chain);
  const { der: _der, ...data } = cert;
  if (o.json) {
    printJson({ ...data, ...extra });
    return;
  }
  if (!o.out) {
    process.stdout.write(cert.certificate + cert.chain);
    return;
  }
  process.stdout.write(`issued ${cert.serial} (${cert.profile}, by ${cert.caId}), valid until ${cert.notAfter.toISOString()}\n`);
  process.stdout.write(`  certificate${o.chainOut ? '' : ' + chain'}: ${o.out}${o.chainOut ? `\n  chain: ${o.chainOut}` : ''}\n`);
  for (const [k, v] of Object.entries(extra)) process.stdout.write(`  ${k}: ${v}\n`);
}

export function certificateCommands(): Command[] {
  const issue = new Command('issue')
    .description('issue a certificate from a CSR, or generate the key here (--generate-key)')
    .option('--csr <file>', 'PKCS#10 request (PEM or DER)')
    .addOption(
      new Option('--generate-key <algorithm>', 'generate the key pair here instead of reading a CSR (ml-kem-768: key-group members)').choices(
        GENERATED_KEY_ALGORITHMS,
      ),
    )
    .option('--san <name...>', 'with --generate-key: subjectAltNames (dns:, ip:, email:, uri: prefixes optional)')
    .option('--cn <name>', 'with --generate-key: subject commonName (must be one of the SANs)')
    .option('--profile <name>', 'certificate profile (server, client, peer, or one from SIGNET_PROFILES_FILE)', 'server')
    .option('--validity-days <n>', "validity in days (default: the profile's)")
    .option('--ca <caId>', "issuing CA (default: the profile's or the default issuing CA)")
    .option('--out <file>', 'write the certificate (followed by the chain unless --chain-out) here')
    .option('--chain-out <file>', 'write the chain (issuer up to, not including, the root) here')
    .option('--key-out <file>', 'with --generate-key: write the private key (PKCS#8 PEM, mode 0600) here')
    .option('--p12 <file>', 'with --generate-key: also write key + certificate + chain as PKCS#12')
    .option('--p12-password-file <file>', 'PKCS#12 password file (else prompted)')
    .option('--json', 'print JSON')
    .action(async (o) => {
      if (!o.csr === !o.generateKey) throw new SignetError('bad-request', 'give exactly one of --csr <file> or --generate-key <algorithm>');
      if (o.generateKey && !o.keyOut && !o.p12)
        throw new SignetError('bad-request', '--generate-key needs --key-out <file> and/or --p12 <file>, or the key would be lost');
      if ((o.san || o.cn) && !o.generateKey)
        throw new SignetError('bad-request', '--san and --cn only apply with --generate-key (a CSR carries its own names)');
      if ((o.keyOut || o.p12) && !o.generateKey)
        throw new SignetError('bad-request', "--key-out and --p12 only apply with --generate-key (Signet never sees a CSR's private key)");
      // PKCS#12 for an ML-KEM key is not built (no interoperable profile for it yet): the PKCS#8 key file is.
      if (o.generateKey === 'ml-kem-768' && o.p12) throw new SignetError('bad-request', '--p12 is not available for ML-KEM keys; use --key-out (PKCS#8)');
      checkOutputs(o);
      const validityDays = o.validityDays === undefined ? undefined : Number(o.validityDays);
      const p12Password = o.p12 ? await readSecret(o.p12PasswordFile, 'PKCS#12 password: ') : undefined;
      if (o.p12 && !p12Password) throw new SignetError('bad-request', 'the PKCS#12 password must not be empty');
      await withSignet(async (ctx, env) => {
        const { issuance } = createServices(ctx, env.config);
        let key;
        let cert: IssuedCertificate;
        if (o.generateKey === 'ml-kem-768') {
          // An ML-KEM key cannot sign, so no CSR can carry it: Signet certifies the key it just made.
          key = generateKey('ml-kem-768').privateKey;
          const sans = (o.san ?? []).map(parseSanArg);
          cert = await issuance.issueForGeneratedKey({ privateKey: key, commonName: o.cn, sans, profile: o.profile, validityDays, caId: o.ca }, cliRequester());
        } else {
          let csr: string | Buffer;
          if (o.generateKey) {
            key = generateKey(o.generateKey as GeneratedKeyAlgorithm).privateKey;
            csr = await buildCsr(key, o.cn, (o.san ?? []).map(parseSanArg));
          } else {
            csr = readCsrFile(o.csr);
          }
          cert = await issuance.issue({ csr, profile: o.profile, validityDays, caId: o.ca }, cliRequester());
        }
        const extra: Record<string, unknown> = {};
        if (key && o.keyOut) {
          writeSecretFile(o.keyOut, key.export({ format: 'pem', type: 'pkcs8' }) as string);
          extra.key = o.keyOut;
        }
        if (key && o.p12) {
          writeSecretFile(
            o.p12,
            buildPkcs12({ privateKey: key, certificates: [cert.der, ...fromPem(cert.chain)], password: p12Password!, friendlyName: cert.serial }),
          );
          extra.pkcs12 = o.p12;
        }
        emit(cert, o, extra);
      });
    });

  const renew = new Command('renew')
    .description('renew a certificate: same names, new serial and validity; with --csr, a new key (rekey)')
    .argument('<serial>', 'serial number (hex)')
    .option('--csr <file>', 'new CSR for a rekey')
    .option('--out <file>', 'write the certificate (and chain) here')
    .option('--chain-out <file>', 'write the chain here')
    .option('--json', 'print JSON')
    .action(async (serial: string, o) =>
      withSignet(async (ctx, env) => {
        const { issuance } = createServices(ctx, env.config);
        const raw = o.csr ? readCsrFile(o.csr) : undefined;
        const cert = await issuance.renew(serial, typeof raw === 'string' || raw === undefined ? raw : toPem(raw, 'CERTIFICATE REQUEST'), cliRequester());
        emit(cert, o, { predecessor: serial });
      }),
    );

  const list = new Command('list')
    .description('list issued certificates, newest first')
    .addOption(new Option('--status <status>', 'filter by status').choices(['good', 'revoked', 'expired', 'hold']))
    .option('--profile <name>', 'filter by profile')
    .option(
      '--san <name>',
      'certificates for this name or a name under it (www.example.com, .example.com, *.example.com), or exactly this IP address, email address or URI',
    )
    .option('--subject <text>', 'subject contains this text (any case)')
    .option('--ca <caId>', 'issued by this CA')
    .option('--expires-before <date>', 'notAfter before this ISO date (e.g. 2027-01-01)')
    .option('--at-risk', 'only what is at risk of expiring without a successor, soonest first, CAs too (README "Expiry alerts"); with --profile and --ca')
    .option('--limit <n>', 'page size', '50')
    .option('--cursor <cursor>', 'continue from a previous page')
    .option('--json', 'print JSON (with nextCursor)')
    .action(async (o) =>
      withSignet(async (ctx) => {
        if (o.atRisk) {
          const other = (['status', 'san', 'subject', 'expiresBefore', 'cursor'] as const).find((k) => o[k] !== undefined);
          if (other)
            throw new SignetError(
              'bad-request',
              `--at-risk combines with --profile, --ca, --limit and --json only, not --${other.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`,
            );
          const limit = Number(o.limit);
          if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new SignetError('bad-request', '--limit must be a whole number from 1 to 500');
          const all = (await findAtRisk(ctx)).filter(
            (a) => (!o.ca || a.caId === o.ca) && (!o.profile || (a.kind === 'certificate' && a.profile === o.profile)),
          );
          const items = all.slice(0, limit);
          if (o.json) {
            printJson({ items, total: all.length });
            return;
          }
          printTable(
            items.map((a) => ({
              kind: a.kind,
              id: a.kind === 'ca' ? a.caId : a.serial,
              profile: a.kind === 'ca' ? '-' : a.profile,
              ca: a.caId,
              notAfter: a.notAfter,
              alertFrom: a.alertFrom,
              names: a.kind === 'ca' ? a.subject : a.sans.map((s) => s.value).join(','),
            })),
            ['kind', 'id', 'profile', 'ca', 'notAfter', 'alertFrom', 'names'],
          );
          if (all.length > items.length) process.stdout.write(`(${all.length - items.length} more: raise --limit)\n`);
          return;
        }
        let expiresBefore: Date | undefined;
        if (o.expiresBefore) {
          expiresBefore = new Date(o.expiresBefore);
          if (Number.isNaN(expiresBefore.getTime()))
            throw new SignetError('bad-request', `--expires-before ${o.expiresBefore} is not a date (use e.g. 2027-01-01)`);
        }
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new SignetError('bad-request', '--limit must be a whole number from 1 to 500');
        // A request stops after examining so many rows (ca/inventory.ts); the operator's command
        // continues the search until the page is full or the inventory ends.
        const filter = { status: o.status as CertStatus | undefined, profile: o.profile, san: o.san, subject: o.subject, caId: o.ca, expiresBefore };
        const page = { items: [] as Awaited<ReturnType<typeof listCertificates>>['items'], nextCursor: (o.cursor as string | undefined) ?? null };
        do {
          const next = await listCertificates(
            ctx,
            { ...filter, cursor: page.nextCursor ?? undefined, limit: limit - page.items.length },
            visibility(cliPrincipal()),
          );
          page.items.push(...next.items);
          page.nextCursor = next.nextCursor;
        } while (page.nextCursor && page.items.length < limit);
        if (o.json) {
          printJson(page);
          return;
        }
        printTable(
          page.items.map((c) => ({ ...c, names: c.sans.map((s) => s.value).join(',') })),
          ['serial', 'status', 'profile', 'notAfter', 'names'],
        );
        if (page.nextCursor) process.stdout.write(`(more: --cursor ${page.nextCursor})\n`);
      }),
    );

  const status = new Command('status')
    .description("print a certificate's status: good, revoked, expired or hold")
    .argument('<serial>', 'serial number (hex)')
    .option('--json', 'print JSON')
    .action(async (serial: string, o) =>
      withSignet(async (ctx) => {
        const c = await getCertificate(ctx, serial);
        if (o.json) printJson({ serial: c.serial, status: c.status, revokedAt: c.revokedAt, reason: c.revocationReason });
        else process.stdout.write(`${c.serial} ${c.status}${c.revokedAt ? ` since ${c.revokedAt.toISOString()} (${c.revocationReason})` : ''}\n`);
      }),
    );

  const show = new Command('show')
    .description("show a certificate's details (or its PEM with --pem)")
    .argument('<serial>', 'serial number (hex)')
    .option('--pem', 'print only the certificate PEM')
    .option('--json', 'print JSON')
    .action(async (serial: string, o) =>
      withSignet(async (ctx) => {
        const c = await getCertificate(ctx, serial);
        if (o.pem) {
          process.stdout.write(c.certificate);
          return;
        }
        if (o.json) {
          printJson(c);
          return;
        }
        const { certificate: _pem, sans, ...rest } = c;
        for (const [k, v] of Object.entries({ ...rest, sans: sans.map((s) => `${s.type}:${s.value}`).join(', ') })) {
          process.stdout.write(`${k.padEnd(18)} ${v instanceof Date ? v.toISOString() : (v ?? '-')}\n`);
        }
      }),
    );

  return [issue, renew, list, status, show];
}
