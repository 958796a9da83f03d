import { Router } from 'express';
import { SignetError } from '../../errors.js';
import type { CaContext } from '../../ca/context.js';

/** Public, unauthenticated PKI endpoints that relying parties fetch over plain HTTP. */
export function pkiRoutes(ctx: CaContext): Router {
  const r = Router();
  r.get('/pki/:file', async (req, res) => {
    const m = /^([a-z0-9-]{1,64})\.crt$/.exec(String(req.params.file));
    if (!m) throw new SignetError('not-found', `no PKI object named ${req.params.file}; expected /pki/<caId>.crt or /pki/<caId>.crl`);
    const ca = await ctx.db.prisma.certificateAuthority.findUnique({ where: { id: m[1]! }, select: { certificateDer: true, fingerprint: true } });
    if (!ca) throw new SignetError('not-found', `CA ${m[1]} does not exist`);
    res.set('Cache-Control', 'public, max-age=86400').set('ETag', `"${ca.fingerprint}"`).type('application/pkix-cert').send(Buffer.from(ca.certificateDer));
  });
  return r;
}
