import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { createIntermediate, importCa, listCas, moveKeyToToken } from '../../ca/hierarchy.js';
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../../pki/keys.js';
import { fingerprintColons } from '../../pki/fingerprint.js';
import { SignetError } from '../../errors.js';
import { readPrivateKeyPem } from '../../pki/encrypted-key.js';
import { printJson, printTable, readSecret, withSignet } from '../runtime.js';

export function caCommand(): Command {
  const ca = new Command('ca').description('manage the CA hierarchy (list, create-intermediate, import, move-key)');

  ca.command('list')
    .description('list the certificate authorities')
    .option('--json', 'print JSON instead of a table')
    .action(async (o: { json?: boolean }) =>
      withSignet(async (ctx) => {
        const cas = await listCas(ctx);
        if (o.json) printJson(cas);
        else
          printTable(
            cas.map((c) => ({ ...c, parent: c.parentId })),
            ['id', 'status', 'keyAlgorithm', 'parent', 'notAfter', 'subject'],
          );
      }),
    );

  ca.command('create-intermediate')
    .description('create a new intermediate CA signed by --parent')
    .requiredOption('--parent <caId>', 'id of the signing CA (see `signet ca list`)')
    .requiredOption('--subject <dn>', 'subject, e.g. "CN=Signet Issuing CA 2,O=Example"')
    .addOption(new Option('--key <algorithm>', 'key algorithm').choices(KEY_ALGORITHMS).default('ecdsa-p256'))
    .option('--validity-days <n>', 'validity in days (clamped to the parent)', '1825')
    .option('--path-len <n>', 'pathLenConstraint', '0')
    .option('--permitted-dns <suffix...>', 'name constraint: permitted DNS subtrees')
    .option('--excluded-dns <suffix...>', 'name constraint: excluded DNS subtrees')
    .option('--permitted-ip <cidr...>', 'name constraint: permitted IP ranges')
    .option('--parent-key <file>', 'encrypted key file of an offline parent (from init --offline-root)')
    .option('--parent-key-passphrase-file <file>', 'file holding the offline key passphrase (else prompted)')
    .option('--json', 'print JSON')
    .action(async (o) =>
      withSignet(async (ctx) => {
        const validityDays = Number(o.validityDays);
        const pathLen = Number(o.pathLen);
        if (!Number.isInteger(validityDays) || validityDays < 1) throw new SignetError('bad-request', '--validity-days must be a positive integer');
        if (!Number.isInteger(pathLen) || pathLen < 0) throw new SignetError('bad-request', '--path-len must be a non-negative integer');
        let parentKey;
        if (o.parentKey) {
          const passphrase = await readSecret(o.parentKeyPassphraseFile, 'Offline key passphrase: ');
          try {
            parentKey = await readPrivateKeyPem(readFileSync(o.parentKey, 'utf8'), passphrase);
          } catch (e) {
            if (e instanceof SignetError) throw new SignetError(e.type, `${o.parentKey}: ${e.detail}`);
            throw new SignetError('bad-key', `could not decrypt ${o.parentKey}: wrong passphrase or not an encrypted PKCS#8 key`);
          }
        }
        const nc =
          o.permittedDns || o.excludedDns || o.permittedIp
            ? { permittedDns: o.permittedDns, excludedDns: o.excludedDns, permittedIp: o.permittedIp }
            : undefined;
        const row = await createIntermediate(
          ctx,
          o.parent,
          { subject: o.subject, keyAlgorithm: o.key as KeyAlgorithm, validityDays, pathLen, nameConstraints: nc },
          'cli',
          parentKey,
        );
        if (o.json) printJson(row);
        else process.stdout.write(`created ${row.id} (${row.subject}), SHA-256 ${fingerprintColons(row.fingerprint)}\n`);
      }),
    );

  ca.command('import')
    .description('bring an existing CA (certificate + private key) under Signet')
    .requiredOption('--cert <file>', 'CA certificate (PEM)')
    .requiredOption('--key <file>', 'CA private key (PEM, PKCS#8 or traditional; may be encrypted)')
    .option('--key-passphrase-file <file>', 'passphrase for an encrypted key')
    .option('--json', 'print JSON')
    .action(async (o) =>
      withSignet(async (ctx) => {
        const keyPem = readFileSync(o.key, 'utf8');
        const passphrase = /ENCRYPTED/.test(keyPem) ? await readSecret(o.keyPassphraseFile, 'Key passphrase: ') : undefined;
        const row = await importCa(ctx, readFileSync(o.cert, 'utf8'), keyPem, { passphrase, actor: 'cli' });
        if (o.json) printJson(row);
        else process.stdout.write(`imported ${row.id} (${row.subject})${row.parentId ? ` under ${row.parentId}` : ''}\n`);
      }),
    );
  ca.command('move-key')
    .description('move a CA key sealed in software into the PKCS#11 token (SIGNET_KEY_STORE=pkcs11), non-extractable')
    .argument('<caId>', 'id of the CA (see `signet ca list`)')
    .addOption(new Option('--to <store>', 'where the key goes').choices(['pkcs11']).makeOptionMandatory())
    .option('--json', 'print JSON')
    .action(async (caId: string, o: { json?: boolean }) =>
      withSignet(async (ctx) => {
        const r = await moveKeyToToken(ctx, caId, 'cli');
        if (o.json) printJson(r);
        else {
          process.stdout.write(
            r.alreadyMoved
              ? `the key of ${r.caId} is already in the token (${r.keyUri}); nothing to move, the database files were scrubbed of removed keys again\n`
              : `moved the key of ${r.caId} into the token: ${r.keyUri}; its sealed copy is deleted\n`,
          );
          if (r.scrubWarning) process.stderr.write(`warning: ${r.scrubWarning}\n`);
        }
      }),
    );
  return ca;
}
