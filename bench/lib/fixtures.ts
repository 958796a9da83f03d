/**
 * Bulk fixtures written straight into Signet's "Certificate" table: N rows cloned from one real
 * certificate row (same DER, CA, names, validity), each with a unique serial (16 bytes, positive)
 * and fingerprint, and createdAt one second apart going back from `baseEpoch`, with the rows of
 * the name index (CertificateName) that issuance writes for those names. The DER is not
 * re-signed per row: fine for CRL/inventory timing, and said so in the reports.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { nameKeysOfStored } from '../../src/storage/certificate-names.js';

export interface TemplateRow {
  caId: string;
  profile: string;
  subject: string;
  commonName: string | null;
  sans: string;
  sanText: string;
  keyAlgorithm: string;
  notBefore: string;
  notAfter: string;
  der: Buffer;
}

export interface BulkOptions {
  count: number;
  offset: number;
  status: 'good' | 'revoked';
  baseEpoch: number;
}

const COLS =
  '"serial","caId","profile","subject","commonName","sans","sanText","keyAlgorithm","notBefore","notAfter","der","fingerprint","status","revokedAt","revocationReason","statusChangedAt","createdAt"';

export function sqliteTemplate(dbFile: string, serial: string): TemplateRow {
  const db = new Database(dbFile, { readonly: true });
  try {
    const row = db
      .prepare(
        'SELECT "caId","profile","subject","commonName","sans","sanText","keyAlgorithm","notBefore","notAfter","der" FROM "Certificate" WHERE "serial" = ?',
      )
      .get(serial) as TemplateRow | undefined;
    if (!row) throw new Error(`no certificate ${serial} in ${dbFile}`);
    return row;
  } finally {
    db.close();
  }
}

/** SQLite: one INSERT … SELECT over a recursive counter, in one transaction. */
export function sqliteBulkInsert(dbFile: string, t: TemplateRow, o: BulkOptions): number {
  const db = new Database(dbFile);
  const t0 = performance.now();
  try {
    db.pragma('busy_timeout = 60000');
    const revoked = o.status === 'revoked';
    const ts = `strftime('%Y-%m-%dT%H:%M:%S.000+00:00', @base - x, 'unixepoch')`;
    db.prepare(`WITH RECURSIVE c(x) AS (SELECT @from UNION ALL SELECT x + 1 FROM c WHERE x < @to)
      INSERT INTO "Certificate" (${COLS})
      SELECT printf('5b%06x', x) || lower(hex(randomblob(12))), @caId, @profile, @subject, @commonName, @sans, @sanText, @keyAlgorithm, @notBefore, @notAfter, @der,
             printf('f%07x', x) || lower(hex(randomblob(28))), @status,
             ${revoked ? ts : 'NULL'}, ${revoked ? "'keyCompromise'" : 'NULL'}, ${revoked ? ts : 'NULL'}, ${ts}
      FROM c`).run({
      from: o.offset + 1,
      to: o.offset + o.count,
      base: o.baseEpoch,
      caId: t.caId,
      profile: t.profile,
      subject: t.subject,
      commonName: t.commonName,
      sans: t.sans,
      sanText: t.sanText,
      keyAlgorithm: t.keyAlgorithm,
      notBefore: t.notBefore,
      notAfter: t.notAfter,
      der: t.der,
      status: o.status,
    });
    db.prepare(`INSERT OR IGNORE INTO "CertificateName" ("key", "serial", "createdAt")
      SELECT k.value, c."serial", c."createdAt" FROM "Certificate" c, json_each(@keys) k
      WHERE c."serial" >= printf('5b%06x', @from) AND c."serial" < printf('5b%06x', @to + 1)`).run({
      keys: JSON.stringify(nameKeysOfStored(t.sans)),
      from: o.offset + 1,
      to: o.offset + o.count,
    });
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.exec('ANALYZE');
  } finally {
    db.close();
  }
  return performance.now() - t0;
}

export async function pgTemplate(url: string, serial: string): Promise<TemplateRow & { notBeforeDate: Date; notAfterDate: Date }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query(
      'SELECT "caId","profile","subject","commonName","sans","sanText","keyAlgorithm","notBefore","notAfter","der" FROM "Certificate" WHERE "serial" = $1',
      [serial],
    );
    const row = r.rows[0] as (Omit<TemplateRow, 'notBefore' | 'notAfter'> & { notBefore: Date; notAfter: Date }) | undefined;
    if (!row) throw new Error(`no certificate ${serial} in PostgreSQL`);
    return { ...row, notBefore: row.notBefore.toISOString(), notAfter: row.notAfter.toISOString(), notBeforeDate: row.notBefore, notAfterDate: row.notAfter };
  } finally {
    await c.end();
  }
}

/** PostgreSQL: INSERT … SELECT over generate_series, then ANALYZE. */
export async function pgBulkInsert(url: string, t: TemplateRow & { notBeforeDate: Date; notAfterDate: Date }, o: BulkOptions): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const t0 = performance.now();
  try {
    const revoked = o.status === 'revoked';
    const ts = `to_timestamp($3::bigint - x) AT TIME ZONE 'UTC'`;
    await c.query(
      `INSERT INTO "Certificate" (${COLS})
      SELECT '5b' || lpad(to_hex(x), 6, '0') || substr(md5(random()::text), 1, 24), $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
             'f' || lpad(to_hex(x), 7, '0') || md5(random()::text) || substr(md5(random()::text), 1, 24), $14,
             ${revoked ? ts : 'NULL'}, ${revoked ? "'keyCompromise'" : 'NULL'}, ${revoked ? ts : 'NULL'}, ${ts}
      FROM generate_series($1::int, $2::int) AS x`,
      [
        o.offset + 1,
        o.offset + o.count,
        o.baseEpoch,
        t.caId,
        t.profile,
        t.subject,
        t.commonName,
        t.sans,
        t.sanText,
        t.keyAlgorithm,
        t.notBeforeDate,
        t.notAfterDate,
        t.der,
        o.status,
      ],
    );
    await c.query(
      `INSERT INTO "CertificateName" ("key", "serial", "createdAt")
      SELECT k, c."serial", c."createdAt" FROM "Certificate" c, unnest($1::text[]) k
      WHERE c."serial" >= '5b' || lpad(to_hex($2::int), 6, '0') AND c."serial" < '5b' || lpad(to_hex($3::int + 1), 6, '0')
      ON CONFLICT DO NOTHING`,
      [nameKeysOfStored(t.sans), o.offset + 1, o.offset + o.count],
    );
    await c.query('ANALYZE "Certificate"');
    await c.query('ANALYZE "CertificateName"');
  } finally {
    await c.end();
  }
  return performance.now() - t0;
}
