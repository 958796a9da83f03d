/**
 * ACME over HTTP: thin Express routes over AcmeService. Every response carries a fresh
 * Replay-Nonce and the directory link; every error is an ACME problem document
 * (urn:ietf:params:acme:error:*).
 */
import express, { Router, type ErrorRequestHandler, type Request, type Response } from 'express';
import { SignetError, isSignetError } from '../errors.js';
import { parseJws } from './jws.js';
import type { AcmeService } from './service.js';

const ACME_TYPE: Record<string, string> = {
  'bad-request': 'malformed', 'bad-csr': 'badCSR', 'bad-key': 'badCSR', 'rejected-name': 'rejectedIdentifier', policy: 'rejectedIdentifier',
  'not-found': 'malformed', conflict: 'malformed', unauthorized: 'unauthorized', forbidden: 'unauthorized', 'payload-too-large': 'malformed',
  'unsupported-media-type': 'malformed', 'rate-limited': 'rateLimited', unavailable: 'serverInternal', internal: 'serverInternal',
};

export function acmeRoutes(acme: AcmeService): Router {
  const r = Router();
  const base = (req: Request) => `${req.protocol}://${req.get('host')}/acme`;
  const requestUrl = (req: Request) => `${req.protocol}://${req.get('host')}${req.originalUrl}`;
  const accountPrefix = (req: Request) => `${base(req)}/account/`;
  const directoryUrl = (req: Request) => `${base(req)}/directory`;

  r.use(async (req, res, next) => {
    res.set('Cache-Control', 'no-store');
    res.set('Link', `<${directoryUrl(req)}>;rel="index"`);
    try { res.set('Replay-Nonce', await acme.newNonce()); } catch (e) { return next(e); }
    next();
  });
  r.use((req, _res, next) => {
    if (req.method === 'POST' && !req.is('application/jose+json')) {
      return next(new SignetError('unsupported-media-type', `ACME requests must be Content-Type application/jose+json (got ${req.headers['content-type'] ?? 'none'})`, { acme: 'malformed', status: 415 }));
    }
    next();
  });
  r.use(express.json({ type: 'application/jose+json', limit: '64kb', strict: true }));

  const directory = (profile: string, req: Request) => {
    const b = base(req);
    const p = profile === acme.settings.profiles[0] ? '' : `/${profile}`;
    return {
      newNonce: `${b}/new-nonce`, newAccount: `${b}${p}/new-account`, newOrder: `${b}${p}/new-order`, revokeCert: `${b}/revoke-cert`,
      keyChange: `${b}/key-change`, renewalInfo: `${b}/renewal-info`,
      meta: { externalAccountRequired: acme.settings.eabRequired.has(profile), profiles: Object.fromEntries(acme.settings.profiles.map((x) => [x, `${b}${x === acme.settings.profiles[0] ? '' : `/${x}`}/directory`])) },
    };
  };
  r.get('/directory', (req, res) => { res.json(directory(acme.settings.profiles[0]!, req)); });
  r.get('/:profile/directory', (req, res) => { res.json(directory(acme.profileOrThrow(String(req.params.profile)), req)); });
  r.head('/new-nonce', (_req, res) => { res.status(200).end(); });
  r.get('/new-nonce', (_req, res) => { res.status(204).end(); });

  const accountJson = (a: { id: string; status: string; contact: string; createdAt: Date }, req: Request) => ({
    status: a.status, contact: JSON.parse(a.contact) as string[], orders: `${accountPrefix(req)}${a.id}/orders`, createdAt: a.createdAt,
  });
  const orderJson = (o: { id: string; status: string; expires: Date; identifiers: string; authorizations: string; certificateSerial: string | null; notBefore: Date | null; notAfter: Date | null; error: string | null; replaces: string | null }, req: Request) => ({
    status: o.status, expires: o.expires, identifiers: JSON.parse(o.identifiers) as unknown,
    authorizations: (JSON.parse(o.authorizations) as string[]).map((id) => `${base(req)}/authz/${id}`),
    finalize: `${base(req)}/order/${o.id}/finalize`,
    ...(o.certificateSerial ? { certificate: `${base(req)}/cert/${o.certificateSerial}` } : {}),
    ...(o.notBefore ? { notBefore: o.notBefore, notAfter: o.notAfter } : {}),
    ...(o.error ? { error: JSON.parse(o.error) as unknown } : {}),
  });
  const challengeJson = (c: { id: string; type: string; status: string; token: string; validated: Date | null; error: string | null }, req: Request) => ({
    type: c.type, url: `${base(req)}/chall/${c.id}`, status: c.status, token: c.token,
    ...(c.validated ? { validated: c.validated } : {}), ...(c.error ? { error: JSON.parse(c.error) as unknown } : {}),
  });

  const signed = (mode: 'jwk' | 'kid' | 'either') => async (req: Request) => acme.authenticate(parseJws(req.body), requestUrl(req), mode, accountPrefix(req));

  const newAccount = (profileOf: (req: Request) => string) => async (req: Request, res: Response) => {
    const profile = acme.profileOrThrow(profileOf(req));
    const auth = await signed('jwk')(req);
    const { account, created } = await acme.newAccount(profile, auth, requestUrl(req), req.ip);
    res.status(created ? 201 : 200).location(`${accountPrefix(req)}${account.id}`).json(accountJson(account, req));
  };
  r.post('/new-account', newAccount(() => acme.settings.profiles[0]!));
  r.post('/:profile/new-account', newAccount((req) => String(req.params.profile)));

  r.post('/account/:id', async (req, res) => {
    const auth = await signed('kid')(req);
    const row = await acme.updateAccount(auth, String(req.params.id), req.ip);
    res.location(`${accountPrefix(req)}${row.id}`).json(accountJson(row, req));
  });
  r.post('/account/:id/orders', async (req, res) => {
    const auth = await signed('kid')(req);
    if (auth.account!.id !== req.params.id) throw new SignetError('unauthorized', 'an account can only list its own orders', { acme: 'unauthorized', status: 403 });
    const orders = await acme.listOrders(auth.account!.id);
    res.json({ orders: orders.map((o) => `${base(req)}/order/${o.id}`) });
  });
  r.post('/key-change', async (req, res) => {
    const auth = await signed('kid')(req);
    const row = await acme.keyChange(auth, requestUrl(req), accountPrefix(req), parseJws, req.ip);
    res.location(`${accountPrefix(req)}${row.id}`).json(accountJson(row, req));
  });

  const newOrder = (profileOf: (req: Request) => string) => async (req: Request, res: Response) => {
    const profile = acme.profileOrThrow(profileOf(req));
    const auth = await signed('kid')(req);
    const order = await acme.newOrder(profile, auth, req.ip);
    res.status(201).location(`${base(req)}/order/${order.id}`).json(orderJson(order, req));
  };
  r.post('/new-order', newOrder(() => acme.settings.profiles[0]!));
  r.post('/:profile/new-order', newOrder((req) => String(req.params.profile)));

  r.post('/order/:id', async (req, res) => {
    const auth = await signed('kid')(req);
    const order = await acme.order(String(req.params.id), auth.account);
    res.location(`${base(req)}/order/${order.id}`).json(orderJson(order, req));
  });
  r.post('/order/:id/finalize', async (req, res) => {
    const auth = await signed('kid')(req);
    const order = await acme.finalize(String(req.params.id), auth, req.ip);
    res.location(`${base(req)}/order/${order.id}`).json(orderJson(order, req));
  });
  r.post('/authz/:id', async (req, res) => {
    const auth = await signed('kid')(req);
    const p = auth.payload as { status?: unknown } | undefined;
    const a = p && p.status === 'deactivated' ? await acme.deactivateAuthorization(String(req.params.id), auth.account!) : await acme.authorization(String(req.params.id), auth.account);
    res.json({
      identifier: { type: a.identifierType, value: a.identifierValue }, status: a.status, expires: a.expires,
      challenges: a.challenges.map((c) => challengeJson(c, req)), ...(a.wildcard ? { wildcard: true } : {}),
    });
  });
  r.post('/chall/:id', async (req, res) => {
    const auth = await signed('kid')(req);
    // POST-as-GET reads the challenge; only a JSON object payload ("{}") starts validation (RFC 8555 §7.5.1).
    const c = auth.payload === undefined ? await acme.challenge(String(req.params.id), auth.account!) : await acme.respondChallenge(String(req.params.id), auth.account!, req.ip);
    // Tell clients when to poll again (RFC 8555 §8.2); without it lego waits 5 s per challenge.
    if (c.status === 'pending' || c.status === 'processing') res.set('Retry-After', '1');
    res.set('Link', [`<${directoryUrl(req)}>;rel="index"`, `<${base(req)}/authz/${c.authorizationId}>;rel="up"`]).json(challengeJson(c, req));
  });
  r.post('/cert/:serial', async (req, res) => {
    const auth = await signed('kid')(req);
    const pem = await acme.certificateChain(String(req.params.serial), auth.account!);
    res.type('application/pem-certificate-chain').send(pem);
  });
  r.post('/revoke-cert', async (req, res) => {
    const auth = await signed('either')(req);
    await acme.revokeCert(auth, req.ip);
    res.status(200).end();
  });
  r.get('/renewal-info/:certId', async (req, res) => {
    const info = await acme.renewalInfo(String(req.params.certId));
    res.set('Retry-After', '21600').json(info);
  });
  r.use((req, _res, next) => next(new SignetError('not-found', `no ACME resource at ${req.method} ${req.originalUrl}`, { acme: 'malformed', status: 404 })));
  r.use(acmeProblems);
  return r;
}

/** ACME problem documents; body-parser failures become malformed. */
const acmeProblems: ErrorRequestHandler = (err, req, res, _next) => {
  let e: SignetError;
  if (isSignetError(err)) e = err;
  else if ((err as { type?: string }).type === 'entity.parse.failed') e = new SignetError('bad-request', `request body is not valid JSON: ${(err as Error).message}`, { acme: 'malformed' });
  else if ((err as { type?: string }).type === 'entity.too.large') e = new SignetError('payload-too-large', 'request body exceeds 64 KB', { acme: 'malformed' });
  else {
    req.log?.error({ err }, 'ACME request failed');
    e = new SignetError('internal', 'an unexpected error occurred; it has been logged', { acme: 'serverInternal' });
  }
  const type = `urn:ietf:params:acme:error:${e.acme ?? ACME_TYPE[e.type] ?? 'malformed'}`;
  const { retryAfter, location, ...extra } = (e.extra ?? {}) as { retryAfter?: number; location?: string };
  if (retryAfter) res.set('Retry-After', String(retryAfter));
  if (location) res.location(location);
  if (e.status >= 500) req.log?.error({ detail: e.detail }, 'ACME server error');
  res.status(e.status).type('application/problem+json').send(JSON.stringify({ type, detail: e.detail, status: e.status, ...extra }));
};
