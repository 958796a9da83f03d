import { Router } from 'express';
import { SignetError } from '../../errors.js';
import type { CaContext } from '../../ca/context.js';
import type { CrlPublisher } from '../../ca/crl-publisher.js';
import { noQuery, pkiFile, queryParams } from '../params.js';

const crlPath = (caId: string, shard: number) => `/pki/${caId}${shard > 0 ? `.s${shard}` : ''}.crl`;

/** Public, unauthenticated PKI endpoints that relying parties fetch over plain HTTP. */
export function pkiRoutes(ctx: CaContext, crls: CrlPublisher): Router {
  const r = Router();
  r.get('/pki/:file', async (req, res) => {
    const f = pkiFile.safeParse(req.params.file);
    // A name that cannot be a PKI object is one that does not exist.
    if (!f.success)
      throw new SignetError(
        'not-found',
        `no PKI object named ${JSON.stringify(String(req.params.file).slice(0, 80))}; expected /pki/<caId>.crt, /pki/<caId>.crl, /pki/<caId>-delta.crl or /pki/<caId>.s<shard>.crl`,
      );
    queryParams(noQuery, req.query);
    let { caId, shard, delta } = f.data;
    const { kind } = f.data;
    if (kind === 'crl') {
      // <x>-delta.crl: the CRL of a CA whose id is <x>-delta if there is one (ids made before
      // delta CRLs keep their URL), else CA <x>'s delta CRL.
      if (!delta && shard === 0 && caId.endsWith('-delta') && caId.length > 6 && !(await ctx.stores.cas.exists(caId))) {
        caId = caId.slice(0, -6);
        delta = true;
      }
      if (delta && !crls.deltas)
        throw new SignetError('not-found', `delta CRLs are not published (SIGNET_CRL_DELTAS is off); the CRL of CA ${caId} is ${crlPath(caId, shard)}`);
      if (shard > 0 && !(await crls.shards(caId)).includes(shard)) {
        throw new SignetError('not-found', `CA ${caId} has no CRL shard ${shard}`);
      }
      const crl = await crls.current(caId, { shard, delta });
      if (!crl) {
        const exists = await ctx.stores.cas.exists(caId);
        throw new SignetError(
          'not-found',
          exists ? `CA ${caId} has no CRL yet (an offline CA's CRL is signed with \`signet crl --ca ${caId} --key <file>\`)` : `CA ${caId} does not exist`,
        );
      }
      const etag = `"crl-${caId}-${crl.number}"`;
      const maxAge = Math.max(0, Math.min(300, Math.floor((crl.nextUpdate.getTime() - ctx.now().getTime()) / 1000)));
      res.set({
        'Cache-Control': `public, max-age=${maxAge}, no-transform`,
        ETag: etag,
        'Last-Modified': crl.thisUpdate.toUTCString(),
        Expires: crl.nextUpdate.toUTCString(),
      });
      if (req.headers['if-none-match'] === etag) {
        res.status(304).end();
        return;
      }
      res.type('application/pkix-crl').send(crl.der);
      return;
    }
    // A CA's own certificate, or a further certificate for a CA key (a cross-certificate).
    const cert = (await ctx.stores.cas.get(caId)) ?? (await ctx.stores.cas.caCertificate(caId));
    if (!cert) throw new SignetError('not-found', `CA ${caId} does not exist`);
    res.set('Cache-Control', 'public, max-age=86400').set('ETag', `"${cert.fingerprint}"`).type('application/pkix-cert').send(Buffer.from(cert.certificateDer));
  });
  return r;
}
