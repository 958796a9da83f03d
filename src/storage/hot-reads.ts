/**
 * The reads that run on hot paths, as prepared statements on the driver: the API-token
 * lookup before every authenticated request, the enrollment credential's before every EST/SCEP
 * enrollment, the public certificate status, and OCSP's
 * status lookup on a cache miss (where a flood of never-issued serials lands). Through
 * Prisma each cost more than the rest of the request (query compilation per call). Tokens are
 * not cached: a revocation must take effect at once.
 *
 * Also the bulk reads of building every welcome of a key group (a whole tree, every member and
 * its certificate): Prisma's row mapping there cost more than a quarter of the main thread.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import type { DatabaseTarget } from './database-url.js';
import { pgUtc, sqliteDate } from './db-time.js';
import type { CertificateStatusRecord, IssuedWithSerial } from '../model/certificate.js';
import type { EnrollmentCredentialRecord } from '../model/enrollment.js';
import { ENROLLMENT_SELECT, enrollmentFromPg, enrollmentFromSqlite } from './enrollment-row.js';

export interface TokenRow {
  id: string;
  name: string;
  secretHash: string;
  scopes: string;
  profiles: string | null;
  nameSuffixes: string | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  grantMac: string | null;
}

export type StatusRow = CertificateStatusRecord;
export type IssuedRow = IssuedWithSerial;

export interface HotReads {
  token(secretHash: string): Promise<TokenRow | null>;
  enrollmentCredential(secretHash: string): Promise<EnrollmentCredentialRecord | null>;
  certificateStatus(serial: string): Promise<StatusRow | null>;
  /** OCSP on a cache miss: every certificate (leaf or CA) with this serial, with its issuer and status. */
  issuedWithSerial(serial: string): Promise<IssuedRow[]>;
  /** Every node of a key group's tree (each one's sealed key). */
  groupNodes(groupId: string): Promise<GroupNodeRow[]>;
  /** Every member of a key group, in leaf order. */
  groupMembers(groupId: string): Promise<GroupMemberRow[]>;
  /** The DER of each certificate of `serials` that exists. */
  certificateDers(serials: string[]): Promise<Map<string, Uint8Array>>;
  close(): Promise<void>;
}

const TOKEN_SQL =
  'SELECT "id", "name", "secretHash", "scopes", "profiles", "nameSuffixes", "expiresAt", "revokedAt", "grantMac" FROM "ApiToken" WHERE "secretHash" = ';
const STATUS_SQL = 'SELECT "status", "notAfter", "revokedAt", "revocationReason" FROM "Certificate" WHERE "serial" = ';

// A CA certificate is either a CA's own (its row) or a further one for its key (a cross- or
// superseded certificate, CaCertificate); the issuer answers for both.
const ISSUED_SQL = (p1: string, p2: string, p3: string) =>
  `SELECT 'leaf' AS "kind", "caId" AS "issuerId", "status", "revokedAt", "revocationReason" FROM "Certificate" WHERE "serial" = ${p1}` +
  ` UNION ALL SELECT 'ca', "parentId", "status", "revokedAt", "revocationReason" FROM "CertificateAuthority" WHERE "serial" = ${p2}` +
  ` UNION ALL SELECT 'ca', "issuerId", "status", "revokedAt", "revocationReason" FROM "CaCertificate" WHERE "serial" = ${p3}`;

export interface GroupNodeRow {
  level: number;
  pos: number;
  version: number;
  sealed: Uint8Array;
}
export interface GroupMemberRow {
  serial: string;
  leaf: number;
}
const GROUP_NODES_SQL = 'SELECT "level", "pos", "version", "sealed" FROM "KeyGroupNode" WHERE "groupId" = ';
const GROUP_MEMBERS_SQL = (p: string) => `SELECT "serial", "leaf" FROM "KeyGroupMember" WHERE "groupId" = ${p} ORDER BY "leaf"`;

type Raw<T, D extends keyof T> = Omit<T, D> & { [K in D]: unknown };

export function openHotReads(target: DatabaseTarget): HotReads {
  if (target.provider === 'sqlite') {
    const db = new Database(target.location, { readonly: true });
    db.pragma('busy_timeout = 10000');
    const token = db.prepare(`${TOKEN_SQL}?`);
    const credential = db.prepare(`${ENROLLMENT_SELECT} WHERE "secretHash" = ?`);
    const status = db.prepare(`${STATUS_SQL}?`);
    const issued = db.prepare(ISSUED_SQL('?', '?', '?'));
    const groupNodes = db.prepare(`${GROUP_NODES_SQL}?`);
    const groupMembers = db.prepare(GROUP_MEMBERS_SQL('?'));
    // One statement for any number of serials: the list goes in as a JSON array.
    const ders = db.prepare('SELECT "serial", "der" FROM "Certificate" WHERE "serial" IN (SELECT "value" FROM json_each(?))');
    return {
      async token(hash) {
        const r = token.get(hash) as Raw<TokenRow, 'expiresAt' | 'revokedAt'> | undefined;
        return r ? { ...r, expiresAt: sqliteDate(r.expiresAt), revokedAt: sqliteDate(r.revokedAt) } : null;
      },
      async enrollmentCredential(hash) {
        const r = credential.get(hash);
        return r ? enrollmentFromSqlite(r) : null;
      },
      async certificateStatus(serial) {
        const r = status.get(serial) as Raw<StatusRow, 'notAfter' | 'revokedAt'> | undefined;
        return r ? { ...r, notAfter: sqliteDate(r.notAfter)!, revokedAt: sqliteDate(r.revokedAt) } : null;
      },
      async issuedWithSerial(serial) {
        return (issued.all(serial, serial, serial) as Raw<IssuedRow, 'revokedAt'>[]).map((r) => ({ ...r, revokedAt: sqliteDate(r.revokedAt) }));
      },
      async groupNodes(groupId) {
        return groupNodes.all(groupId) as GroupNodeRow[];
      },
      async groupMembers(groupId) {
        return groupMembers.all(groupId) as GroupMemberRow[];
      },
      async certificateDers(serials) {
        const out = new Map<string, Uint8Array>();
        for (let i = 0; i < serials.length; i += 10_000)
          for (const r of ders.all(JSON.stringify(serials.slice(i, i + 10_000))) as { serial: string; der: Uint8Array }[]) out.set(r.serial, r.der);
        return out;
      },
      async close() {
        db.close();
      },
    };
  }
  const pool = new pg.Pool({ connectionString: target.location, max: 4 });
  pool.on('error', () => undefined);
  return {
    async token(hash) {
      const { rows } = await pool.query({ text: `${TOKEN_SQL}$1`, values: [hash], name: 'signet-token-lookup' });
      const r = rows[0] as Raw<TokenRow, 'expiresAt' | 'revokedAt'> | undefined;
      return r ? { ...r, expiresAt: pgUtc(r.expiresAt), revokedAt: pgUtc(r.revokedAt) } : null;
    },
    async enrollmentCredential(hash) {
      const { rows } = await pool.query({ text: `${ENROLLMENT_SELECT} WHERE "secretHash" = $1`, values: [hash], name: 'signet-enrollment-lookup' });
      return rows[0] ? enrollmentFromPg(rows[0]) : null;
    },
    async certificateStatus(serial) {
      const { rows } = await pool.query({ text: `${STATUS_SQL}$1`, values: [serial], name: 'signet-certificate-status' });
      const r = rows[0] as Raw<StatusRow, 'notAfter' | 'revokedAt'> | undefined;
      return r ? { ...r, notAfter: pgUtc(r.notAfter)!, revokedAt: pgUtc(r.revokedAt) } : null;
    },
    async issuedWithSerial(serial) {
      const { rows } = await pool.query({ text: ISSUED_SQL('$1', '$1', '$1'), values: [serial], name: 'signet-issued-with-serial' });
      return (rows as Raw<IssuedRow, 'revokedAt'>[]).map((r) => ({ ...r, revokedAt: pgUtc(r.revokedAt) }));
    },
    async groupNodes(groupId) {
      return (await pool.query({ text: `${GROUP_NODES_SQL}$1`, values: [groupId], name: 'signet-group-nodes' })).rows as GroupNodeRow[];
    },
    async groupMembers(groupId) {
      return (await pool.query({ text: GROUP_MEMBERS_SQL('$1'), values: [groupId], name: 'signet-group-members' })).rows as GroupMemberRow[];
    },
    async certificateDers(serials) {
      const out = new Map<string, Uint8Array>();
      for (let i = 0; i < serials.length; i += 10_000) {
        const { rows } = await pool.query({
          text: 'SELECT "serial", "der" FROM "Certificate" WHERE "serial" = ANY($1)',
          values: [serials.slice(i, i + 10_000)],
          name: 'signet-certificate-ders',
        });
        for (const r of rows as { serial: string; der: Uint8Array }[]) out.set(r.serial, r.der);
      }
      return out;
    },
    async close() {
      await pool.end();
    },
  };
}
