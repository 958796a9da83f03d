import { Router } from 'express';
import { SignetError } from '../../errors.js';
import type { CaContext } from '../../ca/context.js';
import type { CrlPublisher } from '../../ca/crl-publisher.js';

/** Public, unauthenticated PKI endpoints that relying parties fetch over plain HTTP. */
export function pkiRoutes(ctx: CaContext, crls: CrlPublisher): Router {
  const r = Router();
  r.get('/pki/:file', async (req, res) => {
    const m = /^([a-z0-9-]{1,64})\.(crt|crl)$/.exec(String(req.params.file));
    if (!m) throw new SignetError('not-found', `no PKI object named ${req.params.file}; expected /pki/<caId>.crt or /pki/<caId>.crl`);
    if (m[2] === 'crl') {
      const crl = await crls.current(m[1]!);
      if (!crl) {
        const exists = await ctx.db.prisma.certificateAuthority.count({ where: { id: m[1]! } });
        throw new SignetError('not-found', exists ? `CA ${m[1]} has no CRL yet (an offline CA's CRL is signed with \`signet crl --ca ${m[1]} --key <file>\`)` : `CA ${m[1]} does not exist`);
      }
      const etag = `"crl-${m[1]}-${crl.number}"`;
      const maxAge = Math.max(0, Math.min(300, Math.floor((crl.nextUpdate.getTime() - Date.now()) / 1000)));
      res.set({ 'Cache-Control': `public, max-age=${maxAge}, no-transform`, ETag: etag, 'Last-Modified': crl.thisUpdate.toUTCString(), Expires: crl.nextUpdate.toUTCString() });
      if (req.headers['if-none-match'] === etag) { res.status(304).end(); return; }
      res.type('application/pkix-crl').send(crl.der);
      return;
    }
    const ca = await ctx.db.prisma.certificateAuthority.findUnique({ where: { id: m[1]! }, select: { certificateDer: true, fingerprint: true } });
    if (!ca) throw new SignetError('not-found', `CA ${m[1]} does not exist`);
    res.set('Cache-Control', 'public, max-age=86400').set('ETag', `"${ca.fingerprint}"`).type('application/pkix-cert').send(Buffer.from(ca.certificateDer));
  });
  return r;
}
