/**
 * Logical backup and restore, the same format for SQLite and PostgreSQL: a gzip stream of JSON
 * lines — a header, one line per row, a trailer with row counts. It is read inside one
 * snapshot transaction (REPEATABLE READ on PostgreSQL, a read transaction under WAL on SQLite),
 * so it is consistent while the service runs. CA keys stay sealed: a backup is useless without
 * its master key, which is deliberately not in it.
 *
 * Restore reads the whole file once to validate it (format, completeness, the master key
 * unseals its keys) before it creates or changes anything, then inserts every row in one
 * transaction into an empty database, with each certificate's name-index keys.
 */
import { PKCS11_KEK_ID } from '../model/key.js';
import { createReadStream, createWriteStream, renameSync, rmSync } from 'node:fs';
import { createGunzip, createGzip } from 'node:zlib';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { SignetError } from '../errors.js';
import { prismaOf, snapshotIsolation, type Db, type PrismaTx, type Tx } from './database.js';
import { nameKeysOfStored } from './certificate-names.js';
import { CERTIFICATE_DATE_COLUMNS } from './certificate-row.js';

export const BACKUP_FORMAT = 'signet-backup';
export const BACKUP_VERSION = 1;

/** Tables in insertion order (parents first); the primary key orders each table's pages. */
export const BACKUP_TABLES = [
  { model: 'CertificateAuthority', delegate: 'certificateAuthority', key: 'createdAt', unique: 'id' },
  { model: 'CaCertificate', delegate: 'caCertificate', key: 'id', unique: 'id' },
  { model: 'KeyRecord', delegate: 'keyRecord', key: 'id', unique: 'id' },
  { model: 'Certificate', delegate: 'certificate', key: 'serial', unique: 'serial' },
  { model: 'Crl', delegate: 'crl', key: 'id', unique: 'id' },
  { model: 'CrlChunk', delegate: 'crlChunk', key: 'id', unique: 'id' },
  { model: 'OcspResponder', delegate: 'ocspResponder', key: 'id', unique: 'id' },
  { model: 'ApiToken', delegate: 'apiToken', key: 'id', unique: 'id' },
  { model: 'EnrollmentCredential', delegate: 'enrollmentCredential', key: 'id', unique: 'id' },
  { model: 'AuditEvent', delegate: 'auditEvent', key: 'seq', unique: 'seq' },
  { model: 'Setting', delegate: 'setting', key: 'key', unique: 'key' },
  // Expiry alerts already reported: restored, they are not reported again.
  { model: 'ExpiryAlert', delegate: 'expiryAlert', key: 'id', unique: 'id' },
  // ACME state. Replay nonces (AcmeNonce) are deliberately left out: they live for minutes.
  { model: 'AcmeAccount', delegate: 'acmeAccount', key: 'createdAt', unique: 'id' },
  { model: 'AcmeOrder', delegate: 'acmeOrder', key: 'createdAt', unique: 'id' },
  { model: 'AcmeAuthorization', delegate: 'acmeAuthorization', key: 'createdAt', unique: 'id' },
  { model: 'AcmeChallenge', delegate: 'acmeChallenge', key: 'createdAt', unique: 'id' },
  { model: 'AcmeEabKey', delegate: 'acmeEabKey', key: 'createdAt', unique: 'id' },
  // Key groups (src/groups): their node keys are sealed like the CA keys. Composite primary
  // keys page by all their columns (`fields`, Prisma's compound cursor `unique`).
  { model: 'KeyGroup', delegate: 'keyGroup', key: 'createdAt', unique: 'id' },
  { model: 'KeyGroupMember', delegate: 'keyGroupMember', key: 'groupId', unique: 'groupId_serial', fields: ['groupId', 'serial'] },
  { model: 'KeyGroupNode', delegate: 'keyGroupNode', key: 'groupId', unique: 'groupId_level_pos', fields: ['groupId', 'level', 'pos'] },
  { model: 'KeyGroupEpoch', delegate: 'keyGroupEpoch', key: 'groupId', unique: 'groupId_epoch', fields: ['groupId', 'epoch'] },
  { model: 'KeyGroupFreeLeaf', delegate: 'keyGroupFreeLeaf', key: 'groupId', unique: 'groupId_leaf', fields: ['groupId', 'leaf'] },
] as const satisfies readonly { model: string; delegate: string; key: string; unique: string; fields?: readonly string[] }[];

/** A table's page order, and the cursor after a row: by its compound key's columns when it has one. */
function pageOf(t: (typeof BACKUP_TABLES)[number]) {
  const fields = 'fields' in t ? (t.fields as readonly string[]) : undefined;
  return {
    orderBy: fields ? fields.map((f) => ({ [f]: 'asc' })) : [{ [t.key]: 'asc' }, { [t.unique]: 'asc' }],
    after: (row: Record<string, unknown>) => (fields ? Object.fromEntries(fields.map((f) => [f, row[f]])) : row[t.unique]),
  };
}

/**
 * Tables that are not backed up, on purpose (every other table must be in BACKUP_TABLES).
 * CertificateName is derived from each certificate's SANs: restore rebuilds it (so a backup
 * from before the table existed restores with a complete name index too).
 */
export const NOT_BACKED_UP = ['_prisma_migrations', 'AcmeNonce', 'CertificateName', 'Webhook', 'WebhookEvent', 'WebhookDelivery'] as const;

export interface BackupHeader {
  format: string;
  version: number;
  createdAt: string;
  provider: string;
  migrations: string[];
  kekId: string | null;
}
export interface BackupTrailer {
  end: true;
  counts: Record<string, number>;
}

/** JSON with tagged Date, bytes and bigint, so rows round-trip exactly. */
const encode = (row: Record<string, unknown>) =>
  JSON.stringify(row, (_k, v: unknown) => {
    if (typeof v === 'bigint') return { $bigint: v.toString() };
    if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('base64') };
    return v; // Dates arrive here already as ISO strings (Date.prototype.toJSON)
  });
/** Columns that hold dates (JSON has none): the certificate's from its declaration, then the other tables'. */
const DATE_FIELDS: ReadonlySet<string> = new Set([
  ...CERTIFICATE_DATE_COLUMNS,
  'createdAt',
  'notBefore',
  'notAfter',
  'revokedAt',
  'thisUpdate',
  'nextUpdate',
  'expiresAt',
  'expires',
  'validated',
  'lastUsedAt',
  'time',
  'retiringSince',
  'overlapEndsAt',
  'joinedAt',
]);
function decode(line: string): Record<string, unknown> {
  return JSON.parse(line, (k, v: unknown) => {
    if (v && typeof v === 'object' && '$bigint' in v) return BigInt((v as { $bigint: string }).$bigint);
    if (v && typeof v === 'object' && '$bytes' in v) return new Uint8Array(Buffer.from((v as { $bytes: string }).$bytes, 'base64'));
    if (typeof v === 'string' && DATE_FIELDS.has(k)) return new Date(v);
    return v;
  }) as Record<string, unknown>;
}

type Delegate = { findMany(args: unknown): Promise<Record<string, unknown>[]>; createMany(args: unknown): Promise<unknown> };
const delegateOf = (db: Db | PrismaTx | Tx, name: string) => (db as unknown as Record<string, Delegate>)[name]!;

/** One snapshot across all tables (snapshotIsolation), allowed to take as long as a big backup does. */
function snapshotOptions(provider: string) {
  return { timeout: 3_600_000, maxWait: 60_000, ...snapshotIsolation(provider) };
}

export async function writeBackup(
  db: Db,
  file: string,
  header: Omit<BackupHeader, 'format' | 'version' | 'createdAt'>,
  onProgress?: (table: string, rows: number) => void,
): Promise<BackupTrailer> {
  const tmp = `${file}.partial`;
  const gz = createGzip();
  const out = createWriteStream(tmp, { mode: 0o600 });
  const done = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
    gz.on('error', reject);
  });
  gz.pipe(out);
  const write = async (s: string) => {
    if (!gz.write(s + '\n')) await once(gz, 'drain');
  };
  const counts: Record<string, number> = {};
  try {
    await write(JSON.stringify({ format: BACKUP_FORMAT, version: BACKUP_VERSION, createdAt: new Date().toISOString(), ...header }));
    await db.$transaction(async (tx) => {
      for (const t of BACKUP_TABLES) {
        counts[t.model] = 0;
        const page = pageOf(t);
        let cursor: unknown;
        for (;;) {
          const rows = await delegateOf(tx, t.delegate).findMany({
            orderBy: page.orderBy,
            take: 1000,
            ...(cursor !== undefined ? { cursor: { [t.unique]: cursor }, skip: 1 } : {}),
          });
          for (const r of rows) await write(JSON.stringify({ t: t.model, r: JSON.parse(encode(r)) }));
          counts[t.model] = (counts[t.model] ?? 0) + rows.length;
          onProgress?.(t.model, counts[t.model] ?? 0);
          if (rows.length < 1000) break;
          cursor = page.after(rows[rows.length - 1]!);
        }
      }
    }, snapshotOptions(header.provider));
    await write(JSON.stringify({ end: true, counts }));
    gz.end();
    await done;
    renameSync(tmp, file);
    return { end: true, counts };
  } catch (e) {
    gz.destroy();
    out.destroy();
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** A gzip failure, said precisely: no gzip header at all means some other kind of file. */
function unreadable(file: string, e: Error): SignetError {
  if (/incorrect header check/.test(e.message))
    return new SignetError('bad-request', `${file} is not a Signet backup (it is not a gzip file); nothing was restored`);
  return new SignetError('bad-request', `backup file ${file} is truncated or corrupted (${e.message}); nothing was restored`);
}

async function* lines(file: string): AsyncGenerator<string> {
  const source = createReadStream(file);
  const input = source.pipe(createGunzip());
  const rl = createInterface({ input, crlfDelay: Infinity });
  const failed = new Promise<never>((_, reject) => {
    // pipe() does not forward the source's errors: a missing or unreadable file must be said, not crash.
    source.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        new SignetError('bad-request', e.code === 'ENOENT' ? `backup file ${file} does not exist` : `backup file ${file} could not be read: ${e.message}`),
      ),
    );
    input.on('error', (e) => reject(unreadable(file, e)));
  });
  failed.catch(() => undefined);
  const it = rl[Symbol.asyncIterator]();
  for (;;) {
    const next = await Promise.race([it.next(), failed]);
    if (next.done) break;
    yield next.value;
  }
  await Promise.race([Promise.resolve(), failed]);
}

export interface ValidatedBackup {
  header: BackupHeader;
  counts: Record<string, number>;
  firstKey?: { id: string; kekId: string; sealed: Uint8Array };
}

/** Reads the whole file; throws a precise 'bad-request' if it is not a complete Signet backup. */
export async function validateBackup(file: string): Promise<ValidatedBackup> {
  let header: BackupHeader | undefined;
  let trailer: BackupTrailer | undefined;
  const seen: Record<string, number> = {};
  let firstKey: ValidatedBackup['firstKey'];
  let n = 0;
  try {
    for await (const line of lines(file)) {
      n++;
      if (trailer) throw new SignetError('bad-request', `backup file ${file} has data after its trailer (line ${n})`);
      const obj = n === 1 ? (JSON.parse(line) as BackupHeader) : decode(line);
      if (n === 1) {
        header = obj as BackupHeader;
        if (header.format !== BACKUP_FORMAT) throw new SignetError('bad-request', `${file} is not a Signet backup`);
        if (header.version !== BACKUP_VERSION)
          throw new SignetError('bad-request', `${file} is backup format version ${header.version}; this Signet reads version ${BACKUP_VERSION}`);
        continue;
      }
      if ((obj as { end?: boolean }).end) {
        trailer = obj as unknown as BackupTrailer;
        continue;
      }
      const { t, r } = obj as { t: string; r: Record<string, unknown> };
      if (!BACKUP_TABLES.some((x) => x.model === t)) throw new SignetError('bad-request', `backup file ${file} has rows for unknown table ${t} (line ${n})`);
      seen[t] = (seen[t] ?? 0) + 1;
      // The first sealed key, checked against the master key before restoring (a key in a PKCS#11 token seals nothing).
      if (t === 'KeyRecord' && !firstKey && r.kekId !== PKCS11_KEK_ID) firstKey = r as ValidatedBackup['firstKey'];
    }
  } catch (e) {
    if (e instanceof SignetError) throw e;
    if (e instanceof SyntaxError) throw new SignetError('bad-request', `backup file ${file} is corrupted (line ${n + 1} is not JSON)`);
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (code === 'ENOENT') throw new SignetError('bad-request', `backup file ${file} does not exist`);
    if (code.startsWith('Z_') || /unexpected end of file|incorrect header check/.test((e as Error).message)) throw unreadable(file, e as Error);
    throw new SignetError('bad-request', `backup file ${file} could not be read: ${(e as Error).message}`);
  }
  if (!header) throw new SignetError('bad-request', `backup file ${file} is empty`);
  if (!trailer) throw new SignetError('bad-request', `backup file ${file} is truncated: its trailer is missing`);
  for (const t of BACKUP_TABLES) {
    if ((trailer.counts[t.model] ?? 0) !== (seen[t.model] ?? 0))
      throw new SignetError(
        'bad-request',
        `backup file ${file} is inconsistent: ${t.model} has ${seen[t.model] ?? 0} rows, its trailer says ${trailer.counts[t.model] ?? 0}`,
      );
  }
  return { header, counts: trailer.counts, firstKey };
}

/** Inserts every row of a validated backup, in one transaction, into an empty database. */
export async function restoreRows(tx: Tx, file: string, onProgress?: (rows: number) => void): Promise<number> {
  const batch = new Map<string, Record<string, unknown>[]>();
  let total = 0;
  let order = 0;
  const flush = async (model: string) => {
    const rows = batch.get(model);
    if (!rows?.length) return;
    const t = BACKUP_TABLES.find((x) => x.model === model)!;
    // Self-references (CA parentId) need parents first: insert CAs one by one in backup order (createdAt).
    if (model === 'CertificateAuthority') for (const r of rows) await delegateOf(tx, t.delegate).createMany({ data: [r] });
    else await delegateOf(tx, t.delegate).createMany({ data: rows });
    if (model === 'Certificate') {
      const names = rows.flatMap((r) => nameKeysOfStored(r.sans as string).map((key) => ({ key, serial: r.serial as string, createdAt: r.createdAt as Date })));
      for (let i = 0; i < names.length; i += 5000) await prismaOf(tx).certificateName.createMany({ data: names.slice(i, i + 5000) });
    }
    total += rows.length;
    onProgress?.(total);
    batch.set(model, []);
  };
  let current: string | undefined;
  for await (const line of lines(file)) {
    if (order++ === 0) continue;
    const obj = decode(line);
    if ((obj as { end?: boolean }).end) break;
    const { t, r } = obj as { t: string; r: Record<string, unknown> };
    // Tables come parents first: finish one before the next, or a full batch of children
    // (certificates) would be inserted before the rest of their parents (CAs) and break a foreign key.
    if (current !== undefined && t !== current) await flush(current);
    current = t;
    const rows = batch.get(t) ?? [];
    rows.push(r);
    batch.set(t, rows);
    if (rows.length >= 500) await flush(t);
  }
  for (const t of BACKUP_TABLES) await flush(t.model);
  return total;
}
