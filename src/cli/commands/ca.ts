import { readFileSync, statSync } from 'node:fs';
import { Command, Option } from 'commander';
import { createIntermediate, createRoot, importCa, listCas, moveKeyToToken } from '../../ca/hierarchy.js';
import { renewCa, rotateCa } from '../../ca/succession.js';
import { rolloverRoot } from '../../ca/root-rollover.js';
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../../pki/keys.js';
import { fingerprintColons } from '../../pki/fingerprint.js';
import { derToPem } from '../../pki/pem.js';
import { SignetError } from '../../errors.js';
import { readPrivateKeyPem } from '../../pki/encrypted-key.js';
import { printJson, printTable, readSecret, withSignet } from '../runtime.js';

export function caCommand(): Command {
  const ca = new Command('ca').description('manage the CA hierarchy (list, root, create-root, create-intermediate, import, move-key, rotate, renew)');

  ca.command('list')
    .description('list the certificate authorities')
    .option('--json', 'print JSON instead of a table')
    .action(async (o: { json?: boolean }) =>
      withSignet(async (ctx) => {
        const cas = await listCas(ctx);
        if (o.json) printJson(cas);
        else
          printTable(
            cas.map((c) => ({ ...c, parent: c.parentId, replaces: c.predecessorId, replacedBy: c.successorId })),
            ['id', 'status', 'keyAlgorithm', 'parent', 'replaces', 'replacedBy', 'notAfter', 'subject'],
          );
      }),
    );

  ca.command('root')
    .description(
      'the root certificate(s) to trust: every current root (not replaced by a rollover; a post-quantum root made with create-root is one more), or --id ID; --pem prints the certificate(s)',
    )
    .option('--id <id>', 'one root by its id (e.g. a root being replaced, during a rollover)')
    .option('--pem', 'print the certificate(s) as PEM, for a trust store (e.g. `signet ca root --pem > root.pem`)')
    .option('--json', 'print JSON instead of a table')
    .action(async (o: { id?: string; pem?: boolean; json?: boolean }) =>
      withSignet(async (ctx) => {
        const rows = await ctx.stores.cas.list();
        const replaced = new Set(rows.map((r) => r.predecessorId).filter(Boolean));
        // Roots are the CAs without a parent that Signet created or imported as self-signed
        // (ids root-…; an imported external issuing CA, ext-…, has no parent but is no root).
        const roots = rows.filter((r) => r.parentId === null && r.id.startsWith('root-'));
        const chosen = o.id
          ? roots.filter((r) => r.id === o.id)
          : roots.filter((r) => !replaced.has(r.id) && (r.status === 'active' || r.status === 'offline'));
        if (!chosen.length)
          throw o.id
            ? new SignetError('not-found', `no root CA ${o.id}; \`signet ca list\` shows the CAs (roots have ids root-…)`)
            : new SignetError('not-found', 'no current root CA: run `signet init` (or `npm start`) first');
        if (o.pem) process.stdout.write(chosen.map((r) => derToPem(r.certificateDer, 'CERTIFICATE')).join(''));
        else if (o.json)
          printJson(
            chosen.map((r) => ({
              id: r.id,
              subject: r.subject,
              status: r.status,
              keyAlgorithm: r.keyAlgorithm,
              fingerprint: r.fingerprint,
              notAfter: r.notAfter,
              pem: derToPem(r.certificateDer, 'CERTIFICATE'),
            })),
          );
        else
          printTable(
            chosen.map((r) => ({ ...r, sha256: fingerprintColons(r.fingerprint) })),
            ['id', 'status', 'keyAlgorithm', 'notAfter', 'subject', 'sha256'],
          );
      }),
    );

  ca.command('create-root')
    .description('create one more, independent root CA (e.g. an ML-DSA-87 root beside the classical one); it does not change the default issuing CA')
    .addHelpText(
      'after',
      `
The new root signs nothing until an intermediate is made under it:
  signet ca create-root --key ml-dsa-87 --subject "CN=Example PQ Root,O=Example"
  signet ca create-intermediate --parent <root id> --key ml-dsa-65 --subject "CN=Example PQ Issuing CA,O=Example"
and a profile lists that intermediate in caIds (README: Post-quantum hierarchies). Post-quantum
and classical CA keys do not mix: only a post-quantum intermediate goes under a post-quantum root.`,
    )
    .requiredOption('--key <algorithm>', `key algorithm (${KEY_ALGORITHMS.join(', ')})`)
    .requiredOption('--subject <dn>', 'subject, e.g. "CN=Example PQ Root,O=Example"; must differ from every other CA\'s')
    .option('--validity-days <n>', 'validity in days', '7300')
    .option('--json', 'print JSON')
    .action(async (o) =>
      withSignet(async (ctx) => {
        if (!(KEY_ALGORITHMS as readonly string[]).includes(o.key))
          throw new SignetError('bad-request', `--key must be one of ${KEY_ALGORITHMS.join(', ')} (got ${JSON.stringify(o.key)})`);
        const validityDays = wholeNumber('--validity-days', o.validityDays);
        const row = await createRoot(ctx, { subject: String(o.subject), keyAlgorithm: o.key as KeyAlgorithm, validityDays }, 'cli');
        if (o.json)
          printJson({
            id: row.id,
            subject: row.subject,
            keyAlgorithm: row.keyAlgorithm,
            fingerprint: row.fingerprint,
            notAfter: row.notAfter,
            certificate: derToPem(row.certificateDer, 'CERTIFICATE'),
          });
        else process.stdout.write(`created root ${row.id} (${row.subject}, ${row.keyAlgorithm}), SHA-256 ${fingerprintColons(row.fingerprint)}\n`);
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
        const parentKey = await offlineKey(o);
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
  ca.command('rotate')
    .description(
      'replace an intermediate CA with a new key: a successor under the same parent (same subject, new key id) issues from now on; ' +
        'the old CA stops issuing but keeps its CRL and OCSP until its last certificate expires',
    )
    .argument('<caId>', 'id of the intermediate CA to rotate (see `signet ca list`)')
    .addOption(new Option('--key <algorithm>', "the successor's key algorithm (default: the old CA's)").choices(KEY_ALGORITHMS))
    .option(
      '--overlap-days <n>',
      "days from now in which the old CA's certificates are told to renew (ACME ARI), spread over that time; default: the last third of each certificate's life",
    )
    .option('--validity-days <n>', "the successor's validity in days (default: the old CA's; clamped to the parent)")
    .option('--parent-key <file>', 'encrypted key file of an offline parent (from init --offline-root)')
    .option('--parent-key-passphrase-file <file>', 'file holding the offline key passphrase (else prompted)')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      '\nRun it again after an interruption: if the rotation committed, it reports the successor and changes nothing; if not, it rotates.\n' +
        'Example: signet ca rotate int-3f2a9c0d11 --overlap-days 30',
    )
    .action(async (caId: string, o) =>
      withSignet(async (ctx) => {
        const r = await rotateCa(ctx, caId, {
          keyAlgorithm: o.key as KeyAlgorithm | undefined,
          overlapDays: o.overlapDays === undefined ? undefined : wholeNumber('--overlap-days', o.overlapDays),
          validityDays: o.validityDays === undefined ? undefined : wholeNumber('--validity-days', o.validityDays),
          parentKey: await offlineKey(o),
          actor: 'cli',
        });
        if (o.json) printJson(succession(r.predecessor, r.successor, r.alreadyRotated, r.warnings));
        else
          process.stdout.write(
            `${r.alreadyRotated ? 'already rotated: ' : 'rotated: '}${r.successor.id} (${r.successor.keyAlgorithm}, until ${r.successor.notAfter.toISOString()}) now issues in place of ${r.predecessor.id}, which is ${r.predecessor.status}` +
              `${r.predecessor.overlapEndsAt ? `; its certificates are told to renew before ${r.predecessor.overlapEndsAt.toISOString()}` : ''}\n`,
          );
        for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      }),
    );

  ca.command('renew')
    .description('re-certify a CA: a new certificate for the same key (same subject and key id, new serial and validity, never beyond its parent)')
    .argument('<caId>', 'id of the CA (see `signet ca list`)')
    .option('--validity-days <n>', "validity in days (default: the CA's current lifetime; clamped to the parent)")
    .option('--parent-key <file>', 'encrypted key file of an offline parent, or of the root itself when renewing an offline root')
    .option('--parent-key-passphrase-file <file>', 'file holding the offline key passphrase (else prompted)')
    .option('--json', 'print JSON')
    .action(async (caId: string, o) =>
      withSignet(async (ctx) => {
        const r = await renewCa(ctx, caId, {
          validityDays: o.validityDays === undefined ? undefined : wholeNumber('--validity-days', o.validityDays),
          parentKey: await offlineKey(o),
          actor: 'cli',
        });
        const { certificateDer: _d, crlNumber: _n, keyId: _k, ...ca } = r.ca;
        if (o.json) printJson({ ...ca, supersededId: r.supersededId });
        else
          process.stdout.write(
            `renewed ${r.ca.id}: serial ${r.ca.serial}, valid until ${r.ca.notAfter.toISOString()}; the certificate it replaces stays published as ${r.supersededId}\n`,
          );
      }),
    );

  ca.command('rollover-root')
    .description('replace the root CA (RFC 4210 §4.4): a new root, cross-certificates both ways, and a new issuing intermediate under the new root')
    .addHelpText(
      'after',
      `
In one transaction: a new root key and self-signed root (its predecessor: the old root); the
cross-certificates NewWithOld (the new root's key signed by the old root) and OldWithNew (the
old root's key signed by the new root), served at /pki/<id>.crt; a new issuing intermediate
under the new root that succeeds the old root's issuing intermediate, to which issuance moves
at once (the old one becomes retiring and keeps answering OCSP and publishing its CRL).
Leaves of the new intermediate are served with the chain [intermediate, NewWithOld], so a
client trusting only the old root and one trusting only the new root both verify them.
The new root's subject defaults to the old one's with its CN's generation bumped:
"Signet Root CA" becomes "Signet Root CA R2", "... R2" becomes "... R3".
Running it again after it succeeded reports what it made and changes nothing.`,
    )
    .option('--root <caId>', 'the root to replace (default: the one root)')
    .option('--subject <dn>', 'the new root\'s subject (default: the old one\'s, CN suffixed " R2" / " R<n+1>")')
    .addOption(new Option('--key <algorithm>', "the new root's key algorithm (default: the old root's)").choices(KEY_ALGORITHMS))
    .option('--validity-days <n>', "the new root's validity in days (default: the old root's lifetime)")
    .addOption(new Option('--intermediate-key <algorithm>', "the new intermediate's key algorithm (default: the old intermediate's)").choices(KEY_ALGORITHMS))
    .option('--overlap-days <n>', "days in which the old intermediate's certificates are renewed (ARI); default: the last third of each one's life")
    .option('--parent-key <file>', 'encrypted key file of an offline old root (from init --offline-root)')
    .option('--parent-key-passphrase-file <file>', 'file holding the offline key passphrase (else prompted)')
    .option('--json', 'print JSON')
    .action(async (o) =>
      withSignet(async (ctx) => {
        const validityDays = o.validityDays === undefined ? undefined : wholeNumber('--validity-days', o.validityDays);
        const overlapDays = o.overlapDays === undefined ? undefined : wholeNumber('--overlap-days', o.overlapDays);
        const parentKey = await offlineKey(o);
        const r = await rolloverRoot(ctx, {
          rootId: o.root,
          subject: o.subject,
          keyAlgorithm: o.key as KeyAlgorithm | undefined,
          validityDays,
          intermediateKeyAlgorithm: o.intermediateKey as KeyAlgorithm | undefined,
          overlapDays,
          parentKey,
          actor: 'cli',
        });
        const url = (id: string) => `${ctx.config.publicUrl}/pki/${id}.crt`;
        if (o.json)
          printJson({
            alreadyDone: r.alreadyDone,
            oldRoot: { id: r.oldRoot.id, subject: r.oldRoot.subject, status: r.oldRoot.status },
            newRoot: { id: r.newRoot.id, subject: r.newRoot.subject, fingerprint: r.newRoot.fingerprint, notAfter: r.newRoot.notAfter, url: url(r.newRoot.id) },
            crossCertificates: [
              {
                kind: 'NewWithOld',
                id: r.newWithOld.id,
                caId: r.newWithOld.caId,
                issuerId: r.newWithOld.issuerId,
                serial: r.newWithOld.serial,
                notAfter: r.newWithOld.notAfter,
                url: url(r.newWithOld.id),
              },
              {
                kind: 'OldWithNew',
                id: r.oldWithNew.id,
                caId: r.oldWithNew.caId,
                issuerId: r.oldWithNew.issuerId,
                serial: r.oldWithNew.serial,
                notAfter: r.oldWithNew.notAfter,
                url: url(r.oldWithNew.id),
              },
            ],
            oldIntermediate: r.oldIntermediate && { id: r.oldIntermediate.id, status: r.oldIntermediate.status },
            newIntermediate: r.newIntermediate && {
              id: r.newIntermediate.id,
              subject: r.newIntermediate.subject,
              notAfter: r.newIntermediate.notAfter,
              url: url(r.newIntermediate.id),
            },
          });
        else
          process.stdout.write(
            [
              r.alreadyDone ? `root ${r.oldRoot.id} was already rolled over; nothing changed:` : `rolled over root ${r.oldRoot.id} (now ${r.oldRoot.status}):`,
              `  new root          ${r.newRoot.id} (${r.newRoot.subject}), SHA-256 ${fingerprintColons(r.newRoot.fingerprint)}`,
              `                    ${url(r.newRoot.id)}`,
              `  NewWithOld        ${url(r.newWithOld.id)} (new root's key, signed by ${r.newWithOld.issuerId}, until ${r.newWithOld.notAfter.toISOString()})`,
              `  OldWithNew        ${url(r.oldWithNew.id)} (old root's key, signed by ${r.oldWithNew.issuerId}, until ${r.oldWithNew.notAfter.toISOString()})`,
              r.newIntermediate
                ? `  new intermediate  ${r.newIntermediate.id} (${r.newIntermediate.subject}) succeeds ${r.oldIntermediate?.id ?? '?'} (now ${r.oldIntermediate?.status ?? '?'}); issuance has moved to it`
                : '',
              '',
            ].join('\n'),
          );
      }),
    );
  return ca;
}

const succession = (predecessor: CaRecordView, successor: CaRecordView, alreadyRotated: boolean, warnings: string[]) => ({
  alreadyRotated,
  warnings,
  predecessor: { id: predecessor.id, status: predecessor.status, retiringSince: predecessor.retiringSince, overlapEndsAt: predecessor.overlapEndsAt },
  successor: {
    id: successor.id,
    subject: successor.subject,
    keyAlgorithm: successor.keyAlgorithm,
    serial: successor.serial,
    fingerprint: successor.fingerprint,
    notBefore: successor.notBefore,
    notAfter: successor.notAfter,
  },
});
type CaRecordView = Awaited<ReturnType<typeof rotateCa>>['successor'];

function wholeNumber(flag: string, v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1)
    throw new SignetError('bad-request', `${flag} must be a positive whole number (got ${JSON.stringify(v)})`);
  return n;
}

/** The key of an offline CA from `--parent-key`, decrypted with the passphrase file or prompt. */
async function offlineKey(o: { parentKey?: string; parentKeyPassphraseFile?: string }) {
  if (!o.parentKey) return undefined;
  // A key file is small and regular: a device or a huge file (say /dev/zero) is refused before it is read.
  const st = statSync(o.parentKey, { throwIfNoEntry: false });
  if (!st) throw new SignetError('bad-request', `${o.parentKey} does not exist`);
  if (!st.isFile() || st.size > 65_536) throw new SignetError('bad-request', `${o.parentKey} is not a key file (a regular file of at most 64 KiB)`);
  const passphrase = await readSecret(o.parentKeyPassphraseFile, 'Offline key passphrase: ');
  try {
    return await readPrivateKeyPem(readFileSync(o.parentKey, 'utf8'), passphrase);
  } catch (e) {
    if (e instanceof SignetError) throw new SignetError(e.type, `${o.parentKey}: ${e.detail}`);
    throw new SignetError('bad-key', `could not decrypt ${o.parentKey}: wrong passphrase or not an encrypted PKCS#8 key`);
  }
}
