/**
 * A separate process that enrolls with enrollment credentials (test/enrollment-credentials.test.ts):
 * argv[2] is JSON { spends: [{ secret, times }] }. It authenticates each secret, prints
 * "ready", waits for a line on stdin (so two such processes race), enrolls a certificate for
 * each use at once (issuance spends the use in the certificate's commit) and prints one JSON
 * line: per use, 'spent' or the refusal's status and detail.
 */
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { openSignet } from '../../src/runtime/open.js';
import { authenticateEnrollment } from '../../src/ca/enrollment-credentials.js';
import { enroller } from './enroll-as.js';
import { isSignetError } from '../../src/errors.js';

const job = JSON.parse(process.argv[2]!) as { spends: { secret: string; times: number }[] };
const env = process.env as Record<string, string>;
const ctx = await openSignet(loadConfig(env), pino({ level: 'silent' }));
const enroll = enroller(env);
try {
  const principals = await Promise.all(job.spends.map((s) => authenticateEnrollment(ctx, s.secret, { protocol: 'est' })));
  process.stdout.write('ready\n');
  await new Promise((r) => process.stdin.once('data', r));
  process.stdin.pause();
  const results = await Promise.allSettled(job.spends.flatMap((s, i) => Array.from({ length: s.times }, () => enroll(ctx, principals[i]!))));
  process.stdout.write(
    JSON.stringify(
      results.map((r) =>
        r.status === 'fulfilled' ? 'spent' : isSignetError(r.reason) ? { status: r.reason.status, detail: r.reason.detail } : { error: String(r.reason) },
      ),
    ) + '\n',
  );
} finally {
  await ctx.db.close();
}
