/** TIMESTAMP(3) WITHOUT TIME ZONE holds UTC for Prisma; pg parses it as local time, so undo the zone. */
export function pgUtc(v: unknown): Date | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return new Date(v.getTime() - v.getTimezoneOffset() * 60_000);
  return new Date(String(v) + 'Z');
}
