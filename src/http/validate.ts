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

/** What no Signet field may hold: NUL, and UTF-16 surrogates without their pair (not Unicode text). */
type Unstorable = 'NUL' | 'surrogate';
const unstorable = (s: string): Unstorable | null =>
  s.includes('\u0000') ? 'NUL' : (s as string & { isWellFormed(): boolean }).isWellFormed() ? null : 'surrogate';

/**
 * Where in a parsed JSON value a NUL character (U+0000) or a lone UTF-16 surrogate (JSON's
 * "\ud800" escape) stands, in keys or strings, and which; or null. No Signet field may hold
 * either: PostgreSQL cannot store a NUL in text, and neither database driver can encode a lone
 * surrogate (Prisma fails with a JSON error); refusing them at the edge makes both databases
 * answer the same 400 instead of a 500. Iterative: a body nested thousands deep must not exhaust
 * the stack.
 */
export function findUnstorable(value: unknown): { at: string; kind: Unstorable } | null {
  const stack: [unknown, string][] = [[value, '']];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const kind = unstorable(v);
      if (kind) return { at: path || 'the value', kind };
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    for (const [k, child] of Object.entries(v)) {
      const at = Array.isArray(v) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
      const kind = unstorable(k);
      if (kind) return { at: `a key in ${path || 'the body'}`, kind };
      stack.push([child, at]);
    }
  }
  return null;
}

/**
 * Refuses a JSON value holding a NUL character or a lone surrogate (see findUnstorable), naming
 * where. `acme`: the ACME error type, or a function choosing it by what stands where.
 */
export function refuseNul(value: unknown, what: string, acmeType?: string | ((found: { at: string; kind: Unstorable }) => string)): void {
  const found = findUnstorable(value);
  if (!found) return;
  const acme = typeof acmeType === 'function' ? acmeType(found) : acmeType;
  const detail =
    found.kind === 'NUL'
      ? `${what} contains a NUL character (U+0000) at ${found.at}; no field accepts one`
      : `${what} contains a lone UTF-16 surrogate (a \\ud800–\\udfff escape without its pair, not Unicode text) at ${found.at}; no field accepts one`;
  throw new SignetError('bad-request', detail, acme ? { acme } : {});
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
