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

/**
 * Where in a parsed JSON value a NUL character (U+0000) stands, in keys or strings, or null.
 * No Signet field may hold one, and PostgreSQL cannot store one in text at all; refusing it at
 * the edge makes both databases answer the same 400 instead of a 500 on one of them.
 * Iterative: a body nested thousands deep must not exhaust the stack.
 */
export function findNul(value: unknown): string | null {
  const stack: [unknown, string][] = [[value, '']];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return path || 'the value';
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    for (const [k, child] of Object.entries(v)) {
      const at = Array.isArray(v) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
      if (k.includes('\u0000')) return `a key in ${path || 'the body'}`;
      stack.push([child, at]);
    }
  }
  return null;
}

/** Refuses a JSON value holding a NUL character (see findNul), naming where. */
export function refuseNul(value: unknown, what: string, acme?: string): void {
  const at = findNul(value);
  if (at !== null) throw new SignetError('bad-request', `${what} contains a NUL character (U+0000) at ${at}; no field accepts one`, acme ? { acme } : {});
}

/** A request URL with a percent-encoded NUL (%00) in its path or query. */
export const urlHasNul = (url: string | undefined): boolean => /%00/.test(url ?? '');

/**
 * Express middleware: 400 for %00 anywhere in the URL and for a NUL in a parsed JSON body.
 * `acme` names the ACME error type when the router answers in ACME's problem format.
 */
export function refuseNulCharacters(acme?: string) {
  return (req: { url?: string; body?: unknown }, _res: unknown, next: (err?: unknown) => void): void => {
    if (urlHasNul(req.url)) {
      next(
        new SignetError(
          'bad-request',
          'the request URL contains a percent-encoded NUL character (%00); no path segment or query parameter accepts one',
          acme ? { acme } : {},
        ),
      );
      return;
    }
    try {
      refuseNul(req.body, 'the request body', acme);
    } catch (e) {
      next(e);
      return;
    }
    next();
  };
}
