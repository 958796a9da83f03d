/** Errors that mean "the database is not there right now" (PostgreSQL down, SQLite locked too long). */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string; cause?: unknown } | undefined;
  if (!e) return false;
  if (e.code && ['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'ECONNREFUSED', 'ECONNRESET', 'SQLITE_BUSY', '57P01', '57P03'].includes(e.code)) return true;
  if (
    /ECONNREFUSED|ECONNRESET|Connection terminated|connect ETIMEDOUT|Can't reach database|timeout exceeded when trying to connect|database is locked|terminating connection|Connection refused|the database system is (starting|shutting) up/i.test(
      e.message ?? '',
    )
  )
    return true;
  return e.cause !== undefined && e.cause !== err && isDatabaseUnavailable(e.cause);
}
