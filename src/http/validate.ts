import type { z } from 'zod';
import { SignetError } from '../errors.js';

/** Parses a request part with zod; the first issue becomes a precise 400 detail. */
export function parseBody<S extends z.ZodTypeAny>(schema: S, value: unknown, what = 'request body'): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path.length ? issue.path.join('.') : what;
    throw new SignetError('bad-request', `${path}: ${issue.message}`);
  }
  return r.data;
}
