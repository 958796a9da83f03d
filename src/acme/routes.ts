/**
 * ACME over HTTP: thin Express routes over AcmeService. Every response carries a fresh
 * Replay-Nonce and the directory link; every error is an ACME problem document
 * (urn:ietf:params:acme:error:*).
 *
 * Each ACME profile is a separate directory with its own URLs: the first profile's resources
 * are under /acme/ (so /acme/directory is unchanged), every other profile's under
 * /acme/<profile>/. The directory a request was sent to is therefore always known from its URL
 * and handed to the service, which refuses accounts and resources of other directories.
 */
import express, { Router, type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import { SignetError, isSignetError } from '../errors.js';
import { toSignetError } from '../http/problem.js';
import { parseJws } from './jws.js';
import type { AcmeDirectory, AcmeService, AuthenticatedRequest } from './service.js';
import { refuseNulCharacters } from '../http/validate.js';

const ACME_TYPE: Record<string, string> = {
  'bad-request': 'malformed',
  'bad-csr': 'badCSR',
  'bad-key': 'badCSR',
  'rejected-name': 'rejectedIdentifier',
  policy: 'rejectedIdentifier',
  'not-found': 'malformed',
  conflict: 'malformed',
  unauthorized: 'unauthorized',
  forbidden: 'unauthorized',
  'payload-too-large': 'malformed',
  'unsupported-media-type': 'malformed',
  'rate-limited': 'rateLimited',
  unavailable: 'serverInternal',
  internal: 'serverInternal',
};

type Method = 'get' | 'head' | 'post';
/** How a request proves who sends it: not at all, a JWS with the key (jwk), with the account URL (kid), or either. */
export type AcmeAuth = 'none' | 'jwk' | 'kid' | 'either';

/**
 * Every resource a directory serves, relative to its base URL (/acme or /acme/<profile>).
 * Routes are registered from this table, and the cross-directory test has a row for every
 * entry that is not `none`, so a new endpoint cannot be added without being tested there.
 */
export const ACME_ENDPOINTS = {
  directory: { methods: ['get'], path: '/directory', auth: 'none' },
  newNonce: { methods: ['head', 'get'], path: '/new-nonce', auth: 'none' },
  newAccount: { methods: ['post'], path: '/new-account', auth: 'jwk' },
  account: { methods: ['post'], path: '/account/:id', auth: 'kid' },
  accountOrders: { methods: ['post'], path: '/account/:id/orders', auth: 'kid' },
  keyChange: { methods: ['post'], path: '/key-change', auth: 'kid' },
  newOrder: { methods: ['post'], path: '/new-order', auth: 'kid' },
  order: { methods: ['post'], path: '/order/:id', auth: 'kid' },
  finalize: { methods: ['post'], path: '/order/:id/finalize', auth: 'kid' },
  authz: { methods: ['post'], path: '/authz/:id', auth: 'kid' },
  challenge: { methods: ['post'], path: '/chall/:id', auth: 'kid' },
  certificate: { methods: ['post'], path: '/cert/:serial', auth: 'kid' },
  revokeCert: { methods: ['post'], path: '/revoke-cert', auth: 'either' },
  renewalInfo: { methods: ['get'], path: '/renewal-info/:certId', auth: 'none' },
} as const satisfies Record<string, { methods: readonly Method[]; path: string; auth: AcmeAuth }>;

export type AcmeEndpoint = keyof typeof ACME_ENDPOINTS;

/** One directory as routes see it: its profile and its path under /acme ('' for the first). */
interface Directory {
  profile: string;
  prefix: string;
}

interface Call {
  req: Request;
  res: Response;
  dir: AcmeDirectory;
  auth: AuthenticatedRequest;
  url: (path: string) => string;
}
/** What endpoints with auth 'none' are given; they never read it. */
const UNSIGNED = Object.freeze({ payload: undefined }) as AuthenticatedRequest;

/** `limits`: request-rate limits (http/rate-limit.ts), run after the nonce is set so a 429 carries one. */
export function acmeRoutes(acme: AcmeService, limits: RequestHandler[] = []): Router {
  const r = Router();
  const [first, ...others] = acme.settings.profiles;
  const origin = (req: Request) => `${req.protocol}://${req.get('host')}`;
  const requestUrl = (req: Request) => `${origin(req)}${req.originalUrl}`;
  const dirBase = (req: Request, d: Directory) => `${origin(req)}/acme${d.prefix}`;

  r.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    // Stateless: minting costs an HMAC, no database work (acme/nonces.ts).
    res.set('Replay-Nonce', acme.newNonce());
    next();
  });
  for (const limit of limits) r.use(limit);
  r.use((req, _res, next) => {
    if (req.method === 'POST' && !req.is('application/jose+json')) {
      return next(
        new SignetError('unsupported-media-type', `ACME requests must be Content-Type application/jose+json (got ${req.headers['content-type'] ?? 'none'})`, {
          acme: 'malformed',
          status: 415,
        }),
      );
    }
    next();
  });
  r.use(express.json({ type: 'application/jose+json', limit: '64kb', strict: true }));
  r.use(refuseNulCharacters('malformed'));

  const directoryJson = (req: Request, d: Directory) => {
    const b = dirBase(req, d);
    return {
      newNonce: `${b}/new-nonce`,
      newAccount: `${b}/new-account`,
      newOrder: `${b}/new-order`,
      revokeCert: `${b}/revoke-cert`,
      keyChange: `${b}/key-change`,
      renewalInfo: `${b}/renewal-info`,
      meta: {
        externalAccountRequired: acme.settings.eabRequired.has(d.profile),
        profiles: Object.fromEntries(acme.settings.profiles.map((x) => [x, `${origin(req)}/acme${x === first ? '' : `/${x}`}/directory`])),
      },
    };
  };
  const accountJson = (a: { id: string; status: string; contact: string; createdAt: Date }, url: Call['url']) => ({
    status: a.status,
    contact: JSON.parse(a.contact) as string[],
    orders: url(`/account/${a.id}/orders`),
    createdAt: a.createdAt,
  });
  const orderJson = (
    o: {
      id: string;
      status: string;
      expires: Date;
      identifiers: string;
      authorizations: string;
      certificateSerial: string | null;
      notBefore: Date | null;
      notAfter: Date | null;
      error: string | null;
      replaces: string | null;
    },
    url: Call['url'],
  ) => ({
    status: o.status,
    expires: o.expires,
    identifiers: JSON.parse(o.identifiers) as unknown,
    authorizations: (JSON.parse(o.authorizations) as string[]).map((id) => url(`/authz/${id}`)),
    finalize: url(`/order/${o.id}/finalize`),
    ...(o.certificateSerial ? { certificate: url(`/cert/${o.certificateSerial}`) } : {}),
    ...(o.notBefore ? { notBefore: o.notBefore, notAfter: o.notAfter } : {}),
    ...(o.error ? { error: JSON.parse(o.error) as unknown } : {}),
  });
  const challengeJson = (c: { id: string; type: string; status: string; token: string; validated: Date | null; error: string | null }, url: Call['url']) => ({
    type: c.type,
    url: url(`/chall/${c.id}`),
    status: c.status,
    token: c.token,
    ...(c.validated ? { validated: c.validated } : {}),
    ...(c.error ? { error: JSON.parse(c.error) as unknown } : {}),
  });
  const param = (req: Request, name: string) => String(req.params[name]);

  const handlers: Record<AcmeEndpoint, (c: Call) => unknown> = {
    directory: () => {
      throw new Error('answered by the directory route');
    },
    newNonce: ({ req, res }) => {
      res.status(req.method === 'HEAD' ? 200 : 204).end();
    },
    newAccount: async ({ req, res, dir, auth, url }) => {
      const { account, created } = await acme.newAccount(dir, auth, requestUrl(req), req.ip);
      res
        .status(created ? 201 : 200)
        .location(url(`/account/${account.id}`))
        .json(accountJson(account, url));
    },
    account: async ({ req, res, dir, auth, url }) => {
      const row = await acme.updateAccount(dir, auth, param(req, 'id'), req.ip);
      res.location(url(`/account/${row.id}`)).json(accountJson(row, url));
    },
    accountOrders: async ({ req, res, dir, auth, url }) => {
      const orders = await acme.listOrders(dir, auth, param(req, 'id'));
      res.json({ orders: orders.map((o) => url(`/order/${o.id}`)) });
    },
    keyChange: async ({ req, res, dir, auth, url }) => {
      const row = await acme.keyChange(dir, auth, requestUrl(req), req.ip);
      res.location(url(`/account/${row.id}`)).json(accountJson(row, url));
    },
    newOrder: async ({ req, res, dir, auth, url }) => {
      const order = await acme.newOrder(dir, auth, req.ip);
      res
        .status(201)
        .location(url(`/order/${order.id}`))
        .json(orderJson(order, url));
    },
    order: async ({ req, res, dir, auth, url }) => {
      const order = await acme.order(dir, auth, param(req, 'id'));
      res.location(url(`/order/${order.id}`)).json(orderJson(order, url));
    },
    finalize: async ({ req, res, dir, auth, url }) => {
      const order = await acme.finalize(dir, param(req, 'id'), auth, req.ip);
      res.location(url(`/order/${order.id}`)).json(orderJson(order, url));
    },
    authz: async ({ req, res, dir, auth, url }) => {
      const p = auth.payload as { status?: unknown } | undefined;
      const id = param(req, 'id');
      const a = p && p.status === 'deactivated' ? await acme.deactivateAuthorization(dir, auth, id) : await acme.authorization(dir, auth, id);
      res.json({
        identifier: { type: a.identifierType, value: a.identifierValue },
        status: a.status,
        expires: a.expires,
        challenges: a.challenges.map((c) => challengeJson(c, url)),
        ...(a.wildcard ? { wildcard: true } : {}),
      });
    },
    challenge: async ({ req, res, dir, auth, url }) => {
      const id = param(req, 'id');
      // POST-as-GET reads the challenge; only a JSON object payload ("{}") starts validation (RFC 8555 §7.5.1).
      const c = auth.payload === undefined ? await acme.challenge(dir, auth, id) : await acme.respondChallenge(dir, auth, id, req.ip);
      // Tell clients when to poll again (RFC 8555 §8.2); without it lego waits 5 s per challenge.
      if (c.status === 'pending' || c.status === 'processing') res.set('Retry-After', '1');
      res.set('Link', [`<${url('/directory')}>;rel="index"`, `<${url(`/authz/${c.authorizationId}`)}>;rel="up"`]).json(challengeJson(c, url));
    },
    certificate: async ({ req, res, dir, auth }) => {
      const pem = await acme.certificateChain(dir, auth, param(req, 'serial'));
      res.type('application/pem-certificate-chain').send(pem);
    },
    revokeCert: async ({ req, res, dir, auth }) => {
      await acme.revokeCert(dir, auth, req.ip);
      res.status(200).end();
    },
    renewalInfo: async ({ req, res, dir }) => {
      const info = await acme.renewalInfo(dir, param(req, 'certId'));
      res.set('Retry-After', '21600').json(info);
    },
  };

  const directoryRouter = (d: Directory): Router => {
    const dr = Router();
    const acmeDirectory = (req: Request): AcmeDirectory => {
      const own = `${dirBase(req, d)}/account/`;
      // Accounts of every directory were given /acme/account/<id> before directories had
      // their own URLs; a kid of that form still names the account. Which directory the
      // request is on comes from the request URL, never from the kid.
      const shared = `${origin(req)}/acme/account/`;
      return { profile: d.profile, accountPrefixes: own === shared ? [own] : [own, shared] };
    };
    dr.use((req, res, next) => {
      if (!res.get('Link')) res.set('Link', `<${dirBase(req, d)}/directory>;rel="index"`);
      next();
    });
    dr.get('/directory', (req, res) => {
      res.json(directoryJson(req, d));
    });
    // The first directory's document is also at /acme/<first>/directory (its URLs stay /acme/…).
    if (d.prefix === '')
      dr.get(`/${d.profile}/directory`, (req, res) => {
        res.json(directoryJson(req, d));
      });
    for (const [name, e] of Object.entries(ACME_ENDPOINTS) as [AcmeEndpoint, (typeof ACME_ENDPOINTS)[AcmeEndpoint]][]) {
      if (name === 'directory') continue;
      for (const method of e.methods) {
        dr[method](e.path, async (req, res) => {
          const dir = acmeDirectory(req);
          const auth = e.auth === 'none' ? UNSIGNED : await acme.authenticate(parseJws(req.body), requestUrl(req), e.auth, dir);
          await handlers[name]({ req, res, dir, auth, url: (path) => `${dirBase(req, d)}${path}` });
        });
      }
    }
    return dr;
  };

  for (const p of others) r.use(`/${p}`, directoryRouter({ profile: p, prefix: `/${p}` }));
  r.use(directoryRouter({ profile: first!, prefix: '' }));
  r.get('/:profile/directory', (req, _res, next) => {
    acme.profileOrThrow(String(req.params.profile));
    next();
  });
  r.use((req, _res, next) => next(new SignetError('not-found', `no ACME resource at ${req.method} ${req.originalUrl}`, { acme: 'malformed', status: 404 })));
  r.use(acmeProblems);
  return r;
}

/** ACME problem documents; body-parser failures become malformed. */
const acmeProblems: ErrorRequestHandler = (err, req, res, _next) => {
  // The same translation as every other endpoint (body-parser failures, bad percent-encoding,
  // an unavailable database); only the problem's form is ACME's.
  const e = toSignetError(err);
  if (!isSignetError(err) && e.type === 'internal') req.log?.error({ err }, 'ACME request failed');
  const type = `urn:ietf:params:acme:error:${e.acme ?? ACME_TYPE[e.type] ?? 'malformed'}`;
  const { retryAfter, location, ...extra } = (e.extra ?? {}) as { retryAfter?: number; location?: string };
  if (retryAfter) res.set('Retry-After', String(retryAfter));
  if (location) res.location(location);
  if (e.status >= 500) req.log?.error({ detail: e.detail, err: isSignetError(err) ? err.cause : err }, 'ACME server error');
  res
    .status(e.status)
    .type('application/problem+json')
    .send(JSON.stringify({ type, detail: e.detail, status: e.status, ...extra }));
};
