/**
 * Times as the driver-level code writes and reads them, in the forms Prisma uses, so rows
 * written on either path read back the same through the other.
 */

/** The text Prisma's SQLite adapter stores and reads (ISO 8601 with an explicit offset; sorts as time). */
export const sqliteTime = (d: Date): string => d.toISOString().replace('Z', '+00:00');

/** A SQLite time column (that text, or NULL) as a Date. */
export const sqliteDate = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(String(v)));

/** TIMESTAMP(3) WITHOUT TIME ZONE holds UTC for Prisma; pass UTC text so the session zone cannot shift it. */
export const pgTime = (d: Date): string => d.toISOString().replace('Z', '');

/** TIMESTAMP(3) WITHOUT TIME ZONE holds UTC for Prisma; pg parses it as local time, so undo the zone. */
export function pgUtc(v: unknown): Date | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return new Date(v.getTime() - v.getTimezoneOffset() * 60_000);
  return new Date(String(v) + 'Z');
}
