import { Router } from 'express';
import { SignetError } from '../../errors.js';
import { listCas } from '../../ca/hierarchy.js';
import { caUrls, type CaContext } from '../../ca/context.js';
import { inspectCertificate, toPem } from '../../pki/certificate.js';
import { nameToString } from '../../pki/dn.js';
import { requireAuth } from '../auth.js';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AuthorityKeyIdentifier } from '@peculiar/asn1-x509';
import { EXT } from '../../pki/extensions.js';

export function caRoutes(ctx: CaContext): Router {
  const r = Router();
  r.get('/cas', requireAuth(ctx, 'read'), async (_req, res) => {
    res.json({ items: await listCas(ctx) });
  });
  r.get('/cas/:id', requireAuth(ctx, 'read'), async (req, res) => {
    const id = String(req.params.id);
    const ca = await ctx.db.prisma.certificateAuthority.findUnique({ where: { id } });
    if (!ca) throw new SignetError('not-found', `CA ${id} does not exist`);
    const c = inspectCertificate(ca.certificateDer);
    const akiExt = c.parsed.tbsCertificate.extensions?.find((e) => e.extnID === EXT.authorityKeyIdentifier);
    const aki = akiExt ? AsnConvert.parse(akiExt.extnValue.buffer, AuthorityKeyIdentifier).keyIdentifier : undefined;
    res.json({
      id: ca.id, name: ca.name, parentId: ca.parentId, status: ca.status, keyAlgorithm: ca.keyAlgorithm,
      subject: ca.subject, issuer: nameToString(c.issuerNameDer), serial: ca.serial, notBefore: ca.notBefore, notAfter: ca.notAfter,
      fingerprintSha256: ca.fingerprint, pathLen: ca.pathLen, subjectKeyId: c.subjectKeyId.toString('hex'),
      authorityKeyId: aki ? Buffer.from(aki.buffer).toString('hex') : null,
      urls: caUrls(ctx.config.publicUrl, ca.id),
      certificate: toPem(ca.certificateDer),
    });
  });
  return r;
}
