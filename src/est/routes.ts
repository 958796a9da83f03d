/**
 * EST over HTTP (RFC 7030 §3.2.2): `/.well-known/est/<operation>` and
 * `/.well-known/est/<label>/<operation>`, the label being a profile. Thin: it reads the
 * credentials and the body, the service does the rest, and refusals are problem documents
 * (RFC 7030 §4.2.3 leaves the error body to the server), audited like the API's.
 */
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import type { TLSSocket } from 'node:tls';
import { actorOf } from '../ca/authorization.js';
import type { CaContext } from '../ca/context.js';
import { authenticateDevice } from '../ca/device-certificates.js';
import { authenticateEnrollment } from '../ca/enrollment-credentials.js';
import { authenticateHolder } from '../ca/holder-authentication.js';
import type { IssuedCertificate } from '../ca/issuance.js';
import { SignetError } from '../errors.js';
import { auditRefusal } from '../http/audit-refusals.js';
import { presentedCertificate } from '../http/client-certificate.js';
import { decodeBase64Body, type EnrollmentPrincipal, EstService, type HolderPrincipal } from './service.js';

/** A PKCS#10 request in base64 is a few KiB; 64 KiB leaves room for RSA-4096 and many names. */
const BODY_LIMIT = 64 * 1024;
const LABEL = /^[a-z][a-z0-9-]{0,31}$/;
const CERTS_ONLY = 'application/pkcs7-mime; smime-type=certs-only';

declare module 'express-serve-static-core' {
  interface Request {
    estPrincipal?: EnrollmentPrincipal | HolderPrincipal;
  }
}

export function estRoutes(ctx: CaContext, est: EstService, limiters: RequestHandler[]): Router {
  const r = Router();
  for (const limiter of limiters) r.use(limiter);
  r.use(requireTls);
  const body = express.raw({ type: () => true, limit: BODY_LIMIT });

  for (const base of ['', '/:label']) {
    r.get(`${base}/cacerts`, async (req, res) => {
      sendBase64(res, CERTS_ONLY, await est.cacerts(labelOf(req)));
    });
    r.get(`${base}/csrattrs`, (req, res) => {
      const attrs = est.csrattrs(labelOf(req));
      if (!attrs) res.status(204).end();
      else sendBase64(res, 'application/csrattrs', attrs);
    });
    r.post(`${base}/simpleenroll`, body, async (req, res) => {
      const label = labelOf(req);
      const csr = pkcs10Of(req);
      const who = await enrollmentOf(ctx, est, req, res, est.profileOf(label));
      sendCertificate(res, est, await est.simpleenroll(csr, who, req.ip, label));
    });
    r.post(`${base}/simplereenroll`, body, async (req, res) => {
      const label = labelOf(req);
      const csr = pkcs10Of(req);
      const who = await holderOf(ctx, est, req, res);
      sendCertificate(res, est, await est.simplereenroll(csr, who, req.ip, label));
    });
    r.post(`${base}/serverkeygen`, body, async (req, res) => {
      const label = labelOf(req);
      const csr = pkcs10Of(req);
      const who = await enrollmentOf(ctx, est, req, res, est.profileOf(label));
      const { certificate, pkcs8 } = await est.serverkeygen(csr, who, req.ip, label);
      const boundary = EstService.boundary();
      const part = (type: string, der: Buffer) =>
        `--${boundary}\r\nContent-Type: ${type}\r\nContent-Transfer-Encoding: base64\r\n\r\n${der.toString('base64')}\r\n`;
      res
        .status(200)
        .type(`multipart/mixed; boundary=${boundary}`)
        .set('Cache-Control', 'no-store')
        .send(`${part('application/pkcs8', pkcs8)}${part(CERTS_ONLY, est.certsOnly(certificate))}--${boundary}--\r\n`);
    });
  }
  r.use((req, _res, next) =>
    next(
      new SignetError(
        'not-found',
        `no EST operation at ${req.baseUrl}${req.path}; the operations are cacerts, csrattrs, simpleenroll, simplereenroll and serverkeygen`,
      ),
    ),
  );
  r.use(auditEstRefusals(ctx));
  return r;
}

/** EST's passwords and client certificates need TLS (RFC 7030 §3.3). */
const requireTls: RequestHandler = (req, _res, next) => {
  if ((req.socket as Partial<TLSSocket>).encrypted) return next();
  next(new SignetError('forbidden', 'EST is served over TLS only (RFC 7030 §3.3): set SIGNET_TLS=on and use the HTTPS listener (SIGNET_TLS_PORT)'));
};

function labelOf(req: Request): string | undefined {
  const label = req.params.label as string | undefined;
  if (label !== undefined && !LABEL.test(label)) throw new SignetError('not-found', `no EST label ${JSON.stringify(label.slice(0, 40))}`);
  return label;
}

function pkcs10Of(req: Request): Buffer {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/pkcs10')
    throw new SignetError(
      'unsupported-media-type',
      `an EST request is Content-Type: application/pkcs10 (RFC 7030 §4.2.1), not ${JSON.stringify(type || 'none')}`,
    );
  if (!Buffer.isBuffer(req.body)) throw new SignetError('bad-request', 'the request has no body; send the base64 of the PKCS#10 request');
  return decodeBase64Body(req.body, 'PKCS#10');
}

/**
 * Who enrolls: HTTP Basic with an enrollment credential (its id as the user name, its secret as
 * the password) or, without an Authorization header, a TLS client certificate issued by a CA
 * trusted for enrollment (SIGNET_EST_CLIENT_CAS, device-certificates.ts).
 */
async function enrollmentOf(ctx: CaContext, est: EstService, req: Request, res: Response, profile: string | undefined): Promise<EnrollmentPrincipal> {
  const header = req.headers.authorization;
  if (header === undefined && est.devices) {
    const presented = presentedCertificate(req);
    if (presented) {
      const who = authenticateDevice(est.devices, presented, ctx.now());
      if (profile && profile !== who.profile)
        throw new SignetError('forbidden', `devices with a certificate from SIGNET_EST_CLIENT_CAS enroll under profile ${who.profile}, not ${profile}`);
      req.estPrincipal = who;
      return who;
    }
  }
  const m = header ? /^Basic[ ]+([A-Za-z0-9+/]+={0,2})[ ]*$/i.exec(header) : null;
  if (!m) {
    throw new SignetError(
      'unauthorized',
      header
        ? 'the Authorization header must be HTTP Basic with the enrollment credential (user name: its id, password: its secret)'
        : 'EST enrollment needs an enrollment credential as HTTP Basic (user name: its id, password: its secret), from `signet enroll create`',
    );
  }
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new SignetError('unauthorized', 'the HTTP Basic credentials have no ":" between the user name and the password');
  try {
    const who = await authenticateEnrollment(ctx, decoded.slice(colon + 1), { protocol: 'est', id: decoded.slice(0, colon), profile, sourceIp: req.ip });
    req.estPrincipal = who;
    return who;
  } catch (e) {
    // A refusal for a credential that exists was recorded (its event is the cause); an unknown secret is counted below.
    if (e instanceof SignetError && e.cause) res.locals.refusalAudited = true;
    throw e;
  }
}

/** The TLS client certificate, which must be the current Signet certificate being renewed. */
async function holderOf(ctx: CaContext, est: EstService, req: Request, res: Response): Promise<HolderPrincipal> {
  const presented = presentedCertificate(req);
  if (!presented)
    throw new SignetError(
      'unauthorized',
      'simplereenroll authenticates with the certificate being renewed: present it as the TLS client certificate (e.g. pki --est --cert cert.pem --key key.pem)',
    );
  try {
    const who = await authenticateHolder(ctx, est.issuance, presented, { sourceIp: req.ip });
    req.estPrincipal = who;
    return who;
  } catch (e) {
    // A refusal authenticateHolder recorded (the holder of a stored certificate) carries its event as the cause.
    if (e instanceof SignetError && e.cause) res.locals.refusalAudited = true;
    throw e;
  }
}

function sendBase64(res: Response, type: string, der: Buffer): void {
  // One line: RFC 8951 allows it, and strongSwan's client reads nothing else.
  res.status(200).type(type).set('Content-Transfer-Encoding', 'base64').send(der.toString('base64'));
}

function sendCertificate(res: Response, est: EstService, issued: IssuedCertificate): void {
  sendBase64(res, CERTS_ONLY, est.certsOnly(issued));
}

/** Refusals are audited with the principal that made them (anonymous ones are counted, as on the API). */
function auditEstRefusals(ctx: CaContext): express.ErrorRequestHandler {
  return (err, req, res, next) => {
    // A refusal authentication recorded itself (a credential's or a stored certificate's holder).
    if (res.locals.refusalAudited) return next(err);
    const audited = auditRefusal(ctx, err, {
      actor: req.estPrincipal ? actorOf(req.estPrincipal) : 'anonymous',
      target: `${req.method} ${req.baseUrl}${req.path}`,
      sourceIp: req.ip,
    });
    if (!audited) return next(err);
    audited.then(
      () => next(err),
      () => next(err),
    );
  };
}
