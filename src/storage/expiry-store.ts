/**
 * The reads and writes of expiry alerts (ca/expiry-alerts.ts). Every certificate read is a range
 * or a seek of an index: (profile, status, notAfter), (status, notAfter), (predecessorSerial),
 * AcmeOrder (replaces), CertificateName's key.
 */
import type { ExpiryStore } from '../ca/expiry-alerts.js';
import { prismaOf, type StorageDatabase } from './database.js';
import { pgTime, sqliteTime } from './db-time.js';

/** The last sweep's result (Setting row; every process's /metrics reads it). */
const SNAPSHOT_KEY = 'expiry.snapshot';

export function expiryStore(db: StorageDatabase): ExpiryStore {
  const p = db.prisma;
  const notRevokedUnexpired = (now: Date) => ({ status: { not: 'revoked' }, notAfter: { gt: now } });
  return {
    async profilesInUse() {
      // A loose index scan: one seek per profile, never a read of every row.
      const out: string[] = [];
      for (let last: string | undefined; ; ) {
        const r = await p.certificate.findFirst({
          where: last === undefined ? {} : { profile: { gt: last } },
          orderBy: { profile: 'asc' },
          select: { profile: true },
        });
        if (!r) return out;
        out.push(r.profile);
        last = r.profile;
      }
    },
    goodEnding(profile, from, to) {
      return p.certificate.findMany({
        where: { profile, notAfter: { gt: from, lte: to }, status: 'good' },
        select: { serial: true, caId: true, profile: true, subject: true, commonName: true, sans: true, notBefore: true, notAfter: true, createdAt: true },
      });
    },
    async renewed(serials, now) {
      const rows = await p.certificate.findMany({
        where: { predecessorSerial: { in: serials }, ...notRevokedUnexpired(now) },
        select: { predecessorSerial: true },
      });
      return new Set(rows.map((r) => r.predecessorSerial!));
    },
    async replacedByAcme(serials, now) {
      // By the replaces index alone; the few orders found are judged here.
      const orders = (
        await p.acmeOrder.findMany({ where: { replaces: { in: serials } }, select: { replaces: true, certificateSerial: true, status: true } })
      ).filter((o) => o.status === 'valid' && o.certificateSerial);
      if (!orders.length) return new Set();
      const live = await p.certificate.findMany({
        where: { serial: { in: orders.map((o) => o.certificateSerial!) }, ...notRevokedUnexpired(now) },
        select: { serial: true },
      });
      const ok = new Set(live.map((c) => c.serial));
      return new Set(orders.filter((o) => ok.has(o.certificateSerial!)).map((o) => o.replaces!));
    },
    async withNameKeys(keys, since, now) {
      const names = await p.certificateName.findMany({ where: { key: { in: keys }, createdAt: { gt: since } }, select: { serial: true } });
      if (!names.length) return [];
      return p.certificate.findMany({
        where: { serial: { in: [...new Set(names.map((n) => n.serial))] }, ...notRevokedUnexpired(now) },
        select: { serial: true, sans: true, notAfter: true, createdAt: true },
      });
    },
    async goodTimeLeft(now, boundsS) {
      // One range of (status, notAfter): counts below each bound, all, and the seconds left summed.
      const pg = db.provider === 'postgresql';
      const t = (d: Date) => (pg ? pgTime(d) : sqliteTime(d));
      const params: string[] = [];
      const param = (v: string) => {
        params.push(v);
        return pg ? `$${params.length}::timestamp` : '?';
      };
      // Placeholders made in the order they appear in the text (SQLite's ? are positional).
      const seconds = pg ? `EXTRACT(EPOCH FROM ("notAfter" - ${param(t(now))}))` : `(julianday("notAfter") - julianday(${param(t(now))})) * 86400.0`;
      const within = boundsS.map((b, i) => `SUM(CASE WHEN "notAfter" <= ${param(t(new Date(now.getTime() + b * 1000)))} THEN 1 ELSE 0 END) AS b${i}`);
      const sql = `SELECT COUNT(*) AS n, SUM(${seconds}) AS s, ${within.join(', ')} FROM "Certificate" WHERE "status" = 'good' AND "notAfter" > ${param(t(now))}`;
      const [row] = await p.$queryRawUnsafe<Record<string, unknown>[]>(sql, ...params);
      const num = (v: unknown) => Number(v ?? 0);
      return { within: boundsS.map((_, i) => num(row?.[`b${i}`])), count: num(row?.n), sumS: Math.round(num(row?.s)) };
    },
    cas() {
      return p.certificateAuthority.findMany({ select: { id: true, status: true, subject: true, serial: true, notBefore: true, notAfter: true } });
    },
    async reported(ids) {
      const rows = await p.expiryAlert.findMany({ where: { id: { in: ids } }, select: { id: true } });
      return new Set(rows.map((r) => r.id));
    },
    async markReported(a, tx) {
      const t = db.provider === 'postgresql' ? pgTime : sqliteTime;
      const cast = db.provider === 'postgresql' ? '::timestamp' : '';
      const n = await (tx ? prismaOf(tx) : p).$executeRawUnsafe(
        `INSERT INTO "ExpiryAlert" ("id", "kind", "caId", "profile", "notAfter", "reportedAt") VALUES (${ph(db, 1)}, ${ph(db, 2)}, ${ph(db, 3)}, ${ph(db, 4)}, ${ph(db, 5)}${cast}, ${ph(db, 6)}${cast}) ON CONFLICT ("id") DO NOTHING`,
        a.id,
        a.kind,
        a.caId,
        a.profile,
        t(a.notAfter),
        t(a.reportedAt),
      );
      return n === 1;
    },
    async forgetReported(before) {
      await p.expiryAlert.deleteMany({ where: { notAfter: { lt: before } } });
    },
    async saveSnapshot(json) {
      await p.$executeRaw`INSERT INTO "Setting" ("key", "value") VALUES (${SNAPSHOT_KEY}, ${json}) ON CONFLICT ("key") DO UPDATE SET "value" = ${json}`;
    },
    async loadSnapshot() {
      return (await p.setting.findUnique({ where: { key: SNAPSHOT_KEY } }))?.value ?? null;
    },
  };
}

const ph = (db: StorageDatabase, i: number) => (db.provider === 'postgresql' ? `$${i}` : '?');
