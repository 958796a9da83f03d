/**
 * SCEP over HTTP (RFC 8894 §4): a thin adapter over ScepService. `/scep` serves the default
 * profile (SIGNET_SCEP_PROFILE), `/scep/<profile>` any other; the CGI-style `?operation=`
 * selects GetCACaps, GetCACert or PKIOperation (GET with a base64 `message`, or POST with the
 * DER body). SCEP messages are protected by CMS, not by the transport, so these paths are also
 * served on plain HTTP when SIGNET_TLS is on (cli/serve.ts).
 *
 * Errors before a CertRep can be formed (unknown operation or profile, a body that is no
 * pkiMessage, too large) are problem documents; everything after is a CertRep (HTTP 200).
 */
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import { SignetError } from '../errors.js';
import { MAX_CMS_BYTES } from '../pki/cms-signed.js';
import type { CaContext } from '../ca/context.js';
import type { CrlPublisher } from '../ca/crl-publisher.js';
import type { Issuance } from '../ca/issuance.js';
import { storageOf } from '../storage/database.js';
import { SettingStore } from '../storage/setting-store.js';
import { ScepService, type EnrollmentCredentials } from './service.js';

const PKI_MESSAGE = 'application/x-pki-message';

/** `limiters`: the per-address rate limit (http/rate-limit.ts), before any work. */
export function scepRoutes(scep: ScepService, limiters: RequestHandler[] = []): Router {
  const r = Router();
  for (const l of limiters) r.use(l);
  // The body is the DER pkiMessage whatever the client calls its type (some send
  // application/octet-stream or nothing); bounded like any CMS message Signet reads.
  const raw = express.raw({ type: () => true, limit: MAX_CMS_BYTES });

  const operation = (req: Request): string => {
    const op = req.query.operation;
    if (typeof op !== 'string') throw new SignetError('bad-request', 'SCEP requests name an operation: ?operation=GetCACaps, GetCACert or PKIOperation');
    return op;
  };

  const get = async (req: Request, res: Response) => {
    const profile = scep.profile(req.params.profile as string | undefined);
    const op = operation(req);
    switch (op) {
      case 'GetCACaps':
        res.type('text/plain').send(scep.caps());
        return;
      case 'GetCACert': {
        const { body, contentType } = await scep.caCert(profile);
        res.type(contentType).send(body);
        return;
      }
      case 'PKIOperation': {
        const m = req.query.message;
        if (typeof m !== 'string' || m.length === 0) throw new SignetError('bad-request', 'PKIOperation by GET carries the base64 pkiMessage in ?message=');
        if (m.length > Math.ceil((MAX_CMS_BYTES * 4) / 3) + 4)
          throw new SignetError('payload-too-large', `the pkiMessage is larger than ${MAX_CMS_BYTES} bytes`);
        // A '+' the client did not percent-encode arrives as a space.
        const b64 = m.replace(/ /g, '+').replace(/\s/g, '');
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new SignetError('bad-request', 'the PKIOperation message is not base64');
        res.type(PKI_MESSAGE).send(await scep.pkiOperation(profile, Buffer.from(b64, 'base64'), req.ip));
        return;
      }
      default:
        throw new SignetError('bad-request', `SCEP operation ${JSON.stringify(op.slice(0, 40))} is not supported (GetCACaps, GetCACert, PKIOperation)`);
    }
  };

  const post = async (req: Request, res: Response) => {
    const profile = scep.profile(req.params.profile as string | undefined);
    const op = operation(req);
    if (op !== 'PKIOperation')
      throw new SignetError('bad-request', `SCEP operation ${JSON.stringify(op.slice(0, 40))} is not sent by POST (only PKIOperation is)`);
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (body.length === 0) throw new SignetError('bad-request', 'PKIOperation by POST carries the DER pkiMessage as its body');
    res.type(PKI_MESSAGE).send(await scep.pkiOperation(profile, body, req.ip));
  };

  r.get('/', get);
  r.get('/:profile', get);
  r.post('/', raw, post);
  r.post('/:profile', raw, post);
  return r;
}

/** The SCEP service over the authority's services; the RA's rows live in the Setting table. */
export function createScepService(
  ctx: CaContext,
  opts: { issuance: Issuance; crls: Pick<CrlPublisher, 'current'> },
  enrollment: EnrollmentCredentials,
): ScepService {
  return new ScepService(ctx, opts.issuance, opts.crls, new SettingStore(storageOf(ctx.db)), enrollment, {
    defaultProfile: ctx.config.SIGNET_SCEP_PROFILE ?? 'client',
  });
}
