import type { KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { SignetError, isSignetError } from '../../errors.js';
import { REVOKE_REASONS } from '../../ca/revocation.js';
import { inspectCertificate, toPem } from '../../pki/certificate.js';
import { signerFor, type TrustedKey } from '../../pki/keys.js';
import { checkPrivateKey } from '../../pki/private-key.js';
import { readPrivateKeyPem } from '../../pki/encrypted-key.js';
import type { RevocationReason } from '../../pki/crl.js';
import { createServices } from '../../runtime/services.js';
import { printJson, readSecret, withSignet } from '../runtime.js';
import { cliActor, cliRequester } from './certificates.js';

export function revocationCommands(): Command[] {
  const revoke = new Command('revoke')
    .description('revoke certificates (one, several, a file of serials, or all from a CA); CRLs are re-signed at the end')
    .argument('[serials...]', 'serial numbers (hex)')
    .addOption(new Option('--reason <reason>', 'RFC 5280 reason').choices(REVOKE_REASONS as string[]).makeOptionMandatory())
    .option('--invalidity-date <date>', 'when the key was (suspected) compromised, ISO date-time')
    .option('--serials-file <file>', 'file with one serial per line')
    .option('--all-from-ca <caId>', 'revoke every good certificate issued by this CA')
    .option('--json', 'print JSON')
    .action(async (serials: string[], o) =>
      withSignet(async (ctx, env) => {
        const { revocation, crls } = createServices(ctx, env.config);
        let invalidityDate: Date | undefined;
        if (o.invalidityDate) {
          invalidityDate = new Date(o.invalidityDate);
          if (Number.isNaN(invalidityDate.getTime())) throw new SignetError('bad-request', `--invalidity-date ${o.invalidityDate} is not a date`);
        }
        const list = [...serials];
        if (o.serialsFile)
          list.push(
            ...readFileSync(o.serialsFile, 'utf8')
              .split(/\r?\n/)
              .map((l) => l.trim())
              .filter((l) => l && !l.startsWith('#')),
          );
        if (o.allFromCa) {
          const serials = await ctx.stores.certificates.unrevokedSerials(o.allFromCa);
          if (!serials.length && !(await ctx.stores.cas.exists(o.allFromCa))) throw new SignetError('not-found', `CA ${o.allFromCa} does not exist`);
          list.push(...serials);
        }
        if (!list.length) throw new SignetError('bad-request', 'nothing to revoke: give serials, --serials-file or --all-from-ca');
        const bar =
          list.length > 1
            ? new SingleBar({ format: 'revoking [{bar}] {value}/{total} {eta_buffer}', stream: process.stderr, hideCursor: true }, Presets.shades_classic)
            : undefined;
        bar?.start(list.length, 0);
        const done: { serial: string; caId: string }[] = [];
        const failed: { serial: string; error: string }[] = [];
        for (const serial of list) {
          try {
            done.push(await revocation.revoke(serial, { reason: o.reason as RevocationReason, invalidityDate, caId: o.allFromCa }, cliRequester()));
          } catch (e) {
            if (!isSignetError(e) || list.length === 1) throw e;
            failed.push({ serial, error: e.detail });
          }
          bar?.increment();
        }
        bar?.stop();
        // Publish now rather than wait for a server's coalescing timer: relying parties see it at once.
        const published = [];
        for (const caId of new Set(done.map((d) => d.caId))) {
          const ca = await ctx.stores.cas.get(caId);
          // The CRL of each shard the revocations touched (its delta, with delta CRLs).
          const serials = done.filter((d) => d.caId === caId).map((d) => d.serial);
          if (ca?.keyId) published.push(...(await crls.publishFor(caId, serials, cliActor())));
        }
        if (o.json) printJson({ revoked: done, failed, crls: published.map((c) => ({ caId: c.caId, number: c.number.toString(), entries: c.entries })) });
        else {
          process.stdout.write(`revoked ${done.length} certificate(s)${failed.length ? `, ${failed.length} failed` : ''}\n`);
          for (const f of failed) process.stdout.write(`  ${f.serial}: ${f.error}\n`);
          for (const c of published) process.stdout.write(`  CRL ${c.number} for ${c.caId} (${c.entries} entries)\n`);
        }
        if (failed.length) process.exitCode = 2;
      }),
    );

  const unhold = new Command('unhold')
    .description('release a certificate from certificateHold')
    .argument('<serial>', 'serial number (hex)')
    .action(async (serial: string) =>
      withSignet(async (ctx, env) => {
        const { revocation, crls } = createServices(ctx, env.config);
        const r = await revocation.unhold(serial, cliRequester());
        await crls.publishFor(r.caId, [r.serial], cliActor());
        process.stdout.write(`${r.serial} is good again\n`);
      }),
    );

  const crl = new Command('crl')
    .description('sign a CRL now and optionally write it to a file')
    .option('--ca <caId>', 'CA whose CRL to sign (default: the default issuing CA)')
    .option('--out <file>', 'write the CRL here (DER unless --pem)')
    .option('--pem', 'write PEM instead of DER')
    .option('--key <file>', 'key file of an offline CA (from init --offline-root)')
    .option('--key-passphrase-file <file>', 'passphrase for --key (else prompted)')
    .option('--json', 'print JSON')
    .action(async (o) =>
      withSignet(async (ctx, env) => {
        const { crls, issuers } = createServices(ctx, env.config);
        const caId = o.ca ?? (await issuers.defaultCaId());
        let key: TrustedKey | undefined;
        if (o.key) {
          const passphrase = await readSecret(o.keyPassphraseFile, 'Key passphrase: ');
          let decoded: KeyObject;
          try {
            decoded = await readPrivateKeyPem(readFileSync(o.key, 'utf8'), passphrase);
          } catch (e) {
            if (e instanceof SignetError) throw new SignetError(e.type, `${o.key}: ${e.detail}`);
            throw new SignetError('bad-key', `could not decrypt ${o.key}: wrong passphrase or not an encrypted PKCS#8 key`);
          }
          // A CRL signed by another key would be stored and served as the newest CRL, and fail everywhere.
          const ca = await ctx.stores.cas.get(caId);
          if (!ca) throw new SignetError('not-found', `CA ${caId} does not exist`);
          const cert = inspectCertificate(ca.certificateDer);
          try {
            key = checkPrivateKey(decoded, { info: cert.publicKeyInfo, spkiDer: cert.spkiDer });
          } catch (e) {
            if (e instanceof SignetError && e.type === 'bad-key')
              throw new SignetError('bad-key', `the key in ${o.key} does not match CA ${caId}'s certificate: ${e.detail}`);
            throw e;
          }
        }
        const c = await crls.publish(caId, key ? signerFor(key) : undefined, cliActor());
        if (o.out) writeFileSync(o.out, o.pem ? toPem(c.der, 'X509 CRL') : c.der);
        if (o.json)
          printJson({ caId, number: c.number.toString(), thisUpdate: c.thisUpdate, nextUpdate: c.nextUpdate, entries: c.entries, out: o.out ?? null });
        else
          process.stdout.write(
            `CRL ${c.number} for ${caId}: ${c.entries} entries, next update ${c.nextUpdate.toISOString()}${o.out ? `, written to ${o.out}` : ''}\n`,
          );
      }),
    );

  return [revoke, unhold, crl];
}
