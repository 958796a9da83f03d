import { Router, type Response } from 'express';
import { SignetError } from '../../errors.js';
import { createIntermediate, createRoot, importCa, listCas } from '../../ca/hierarchy.js';
import { renewCa, rotateCa } from '../../ca/succession.js';
import { z } from 'zod';
import { KEY_ALGORITHMS } from '../../pki/keys.js';
import { parseBody } from '../validate.js';
import { actorOf } from '../../ca/authorization.js';
import { caId, noQuery, pathParams, queryParams } from '../params.js';
import { dateTime, documentRoute, hexString, itemsOf, pemCertificate } from '../openapi.js';

const createSchema = z
  .object({
    parentId: caId,
    subject: z.string().min(3).max(512),
    keyAlgorithm: z.enum(KEY_ALGORITHMS).default('ecdsa-p256'),
    validityDays: z.number().int().min(1).max(36500).default(1825),
    pathLen: z.number().int().min(0).max(10).default(0),
    nameConstraints: z
      .object({
        permittedDns: z.array(z.string()).optional(),
        excludedDns: z.array(z.string()).optional(),
        permittedIp: z.array(z.string()).optional(),
        excludedIp: z.array(z.string()).optional(),
        permittedEmail: z.array(z.string()).optional(),
        excludedEmail: z.array(z.string()).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
const importSchema = z
  .object({
    certificate: z.string().min(1).max(65536),
    privateKey: z.string().min(1).max(65536),
    passphrase: z.string().max(1024).optional(),
  })
  .strict();
const rootSchema = z
  .object({
    subject: z.string().min(3).max(512),
    keyAlgorithm: z.enum(KEY_ALGORITHMS),
    validityDays: z.number().int().min(1).max(36500).default(7300),
  })
  .strict();
const caPath = z.object({ id: caId }).strict();
const rotateSchema = z
  .object({
    keyAlgorithm: z.enum(KEY_ALGORITHMS).optional(),
    overlapDays: z.number().int().min(1).max(36500).optional(),
    validityDays: z.number().int().min(1).max(36500).optional(),
  })
  .strict();
const renewSchema = z.object({ validityDays: z.number().int().min(1).max(36500).optional() }).strict();

// ---- Responses (the OpenAPI document's, checked against real answers in test/openapi.test.ts)

const keyAlgorithm = z.enum(KEY_ALGORITHMS);
const caStatus = z.enum(['active', 'offline', 'retiring', 'retired', 'revoked']);
export const caSummaryResponse = z
  .object({
    id: caId,
    name: z.string(),
    parentId: caId.nullable(),
    subject: z.string(),
    serial: hexString,
    fingerprint: hexString,
    keyAlgorithm,
    status: caStatus,
    pathLen: z.number().int().nullable(),
    notBefore: dateTime,
    notAfter: dateTime,
    revokedAt: dateTime.nullable(),
    revocationReason: z.string().nullable(),
    predecessorId: caId.nullable(),
    retiringSince: dateTime.nullable(),
    overlapEndsAt: dateTime.nullable(),
    successorId: caId.nullable(),
  })
  .strict();
export const caCreatedResponse = z
  .object({ id: caId, subject: z.string(), parentId: caId.nullable(), fingerprint: hexString, certificate: pemCertificate })
  .strict();
export const caRotatedResponse = z
  .object({
    alreadyRotated: z.boolean(),
    warnings: z.array(z.string()),
    predecessor: z.object({ id: caId, status: caStatus, retiringSince: dateTime.nullable(), overlapEndsAt: dateTime.nullable() }).strict(),
    successor: z
      .object({
        id: caId,
        subject: z.string(),
        parentId: caId.nullable(),
        keyAlgorithm,
        fingerprint: hexString,
        notAfter: dateTime,
        certificate: pemCertificate,
      })
      .strict(),
  })
  .strict();
export const caRenewedResponse = z
  .object({
    id: caId,
    serial: hexString,
    fingerprint: hexString,
    notBefore: dateTime,
    notAfter: dateTime,
    supersededId: z.string().describe('The replaced certificate, kept and published at /pki/<supersededId>.crt'),
    certificate: pemCertificate,
  })
  .strict();
export const caDetailResponse = z
  .object({
    id: caId,
    name: z.string(),
    parentId: caId.nullable(),
    status: caStatus,
    keyAlgorithm,
    subject: z.string(),
    issuer: z.string(),
    serial: hexString,
    notBefore: dateTime,
    notAfter: dateTime,
    fingerprintSha256: hexString,
    pathLen: z.number().int().nullable(),
    subjectKeyId: hexString,
    authorityKeyId: hexString.nullable(),
    predecessorId: caId.nullable(),
    successorId: caId.nullable(),
    retiringSince: dateTime.nullable(),
    overlapEndsAt: dateTime.nullable(),
    urls: z.object({ caIssuers: z.string().url(), crl: z.string().url(), ocsp: z.string().url() }).strict(),
    certificate: pemCertificate,
    caCertificates: z.array(
      z
        .object({
          id: z.string(),
          caId,
          issuerId: caId,
          kind: z.enum(['cross', 'superseded']),
          serial: hexString,
          fingerprintSha256: hexString,
          notBefore: dateTime,
          notAfter: dateTime,
          status: z.enum(['good', 'revoked']),
          url: z.string().url(),
        })
        .strict(),
    ),
  })
  .strict();
const NO_CA = { 404: 'The CA does not exist' };
import { caUrls, type CaContext } from '../../ca/context.js';
import { inspectCertificate, toPem } from '../../pki/certificate.js';
import { nameToString } from '../../pki/dn.js';
import { requireAuth } from '../auth.js';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AuthorityKeyIdentifier } from '@peculiar/asn1-x509';
import { EXT } from '../../pki/extensions.js';

/** `onCaChanged`: a CA's status or certificate changed here (the issuer index and OCSP reload it at once). */
export function caRoutes(ctx: CaContext, onCaChanged?: (caId: string) => void): Router {
  const r = Router();
  documentRoute('GET /cas', { summary: 'List the CAs', query: noQuery, responses: { 200: { description: 'Every CA', schema: itemsOf(caSummaryResponse) } } });
  r.get('/cas', requireAuth(ctx, 'ca.read'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.json({ items: await listCas(ctx) });
  });
  documentRoute('POST /cas', {
    summary: 'Create an intermediate CA, or import one (body with certificate and privateKey)',
    query: noQuery,
    body: z.union([createSchema, importSchema]),
    responses: { 201: { description: 'The CA', schema: caCreatedResponse, headers: { Location: 'The new CA' } } },
    errors: { 404: 'The parent CA does not exist', 409: 'The CA already exists, or the parent cannot sign' },
  });
  r.post('/cas', requireAuth(ctx, 'ca.create'), async (req, res) => {
    queryParams(noQuery, req.query);
    const actor = actorOf(req.principal!);
    const body = req.body as Record<string, unknown> | undefined;
    const row =
      body && 'certificate' in body
        ? await (async () => {
            const b = parseBody(importSchema, body);
            return importCa(ctx, b.certificate, b.privateKey, { passphrase: b.passphrase, actor, sourceIp: req.ip });
          })()
        : await (async () => {
            const b = parseBody(createSchema, body);
            return createIntermediate(ctx, b.parentId, b, actor, undefined, req.ip);
          })();
    sendCreated(res, row);
  });
  // `signet ca create-root` over HTTP: one more, independent root (say ML-DSA-87 beside the classical one).
  documentRoute('POST /cas/roots', {
    summary: 'Create one more, independent root CA (e.g. an ML-DSA-87 root beside the classical one); it issues nothing until an intermediate is made under it',
    query: noQuery,
    body: rootSchema,
    responses: { 201: { description: 'The root', schema: caCreatedResponse, headers: { Location: 'The new CA' } } },
    errors: { 409: 'A CA of that name exists already' },
  });
  r.post('/cas/roots', requireAuth(ctx, 'ca.create'), async (req, res) => {
    queryParams(noQuery, req.query);
    const b = parseBody(rootSchema, req.body);
    const row = await createRoot(ctx, b, actorOf(req.principal!), req.ip);
    sendCreated(res, row);
  });
  // A rotation through the API uses online keys only: an offline parent's key never travels over HTTP.
  documentRoute('POST /cas/:id/rotate', {
    summary: 'Rotate a CA: a successor with a new key, the CA retiring',
    params: caPath,
    query: noQuery,
    body: rotateSchema,
    responses: {
      200: { description: 'Already rotated: the successor made before', schema: caRotatedResponse },
      201: { description: 'The successor', schema: caRotatedResponse, headers: { Location: 'The successor CA' } },
    },
    errors: { ...NO_CA, 409: 'The CA cannot be rotated (revoked, offline parent key…)' },
  });
  r.post('/cas/:id/rotate', requireAuth(ctx, 'ca.rotate'), async (req, res) => {
    const { id } = pathParams(caPath, req.params);
    queryParams(noQuery, req.query);
    const b = parseBody(rotateSchema, req.body ?? {});
    const r = await rotateCa(ctx, id, { ...b, actor: actorOf(req.principal!), sourceIp: req.ip });
    onCaChanged?.(r.predecessor.id);
    res
      .status(r.alreadyRotated ? 200 : 201)
      .location(`/api/v1/cas/${r.successor.id}`)
      .json({
        alreadyRotated: r.alreadyRotated,
        warnings: r.warnings,
        predecessor: {
          id: r.predecessor.id,
          status: r.predecessor.status,
          retiringSince: r.predecessor.retiringSince,
          overlapEndsAt: r.predecessor.overlapEndsAt,
        },
        successor: {
          id: r.successor.id,
          subject: r.successor.subject,
          parentId: r.successor.parentId,
          keyAlgorithm: r.successor.keyAlgorithm,
          fingerprint: r.successor.fingerprint,
          notAfter: r.successor.notAfter,
          certificate: toPem(r.successor.certificateDer),
        },
      });
  });
  documentRoute('POST /cas/:id/renew', {
    summary: "Renew a CA's certificate (same key)",
    params: caPath,
    query: noQuery,
    body: renewSchema,
    responses: { 201: { description: 'The new certificate', schema: caRenewedResponse } },
    errors: { ...NO_CA, 409: 'The CA cannot be renewed' },
  });
  r.post('/cas/:id/renew', requireAuth(ctx, 'ca.renew'), async (req, res) => {
    const { id } = pathParams(caPath, req.params);
    queryParams(noQuery, req.query);
    const b = parseBody(renewSchema, req.body ?? {});
    const r = await renewCa(ctx, id, { ...b, actor: actorOf(req.principal!), sourceIp: req.ip });
    onCaChanged?.(id);
    res.status(201).json({
      id: r.ca.id,
      serial: r.ca.serial,
      fingerprint: r.ca.fingerprint,
      notBefore: r.ca.notBefore,
      notAfter: r.ca.notAfter,
      supersededId: r.supersededId,
      certificate: toPem(r.ca.certificateDer),
    });
  });
  documentRoute('GET /cas/:id', {
    summary: 'One CA, with its certificate, URLs and cross/superseded certificates',
    params: caPath,
    query: noQuery,
    responses: { 200: { description: 'The CA', schema: caDetailResponse } },
    errors: NO_CA,
  });
  r.get('/cas/:id', requireAuth(ctx, 'ca.read'), async (req, res) => {
    const { id } = pathParams(caPath, req.params);
    queryParams(noQuery, req.query);
    const ca = await ctx.stores.cas.get(id);
    if (!ca) throw new SignetError('not-found', `CA ${id} does not exist`);
    const c = inspectCertificate(ca.certificateDer);
    const akiExt = c.parsed.tbsCertificate.extensions?.find((e) => e.extnID === EXT.authorityKeyIdentifier);
    const aki = akiExt ? AsnConvert.parse(akiExt.extnValue.buffer, AuthorityKeyIdentifier).keyIdentifier : undefined;
    res.json({
      id: ca.id,
      name: ca.name,
      parentId: ca.parentId,
      status: ca.status,
      keyAlgorithm: ca.keyAlgorithm,
      subject: ca.subject,
      issuer: nameToString(c.issuerNameDer),
      serial: ca.serial,
      notBefore: ca.notBefore,
      notAfter: ca.notAfter,
      fingerprintSha256: ca.fingerprint,
      pathLen: ca.pathLen,
      subjectKeyId: c.subjectKeyId.toString('hex'),
      authorityKeyId: aki ? Buffer.from(aki.buffer).toString('hex') : null,
      predecessorId: ca.predecessorId,
      successorId: (await ctx.stores.cas.successorOf(ca.id))?.id ?? null,
      retiringSince: ca.retiringSince,
      overlapEndsAt: ca.overlapEndsAt,
      urls: caUrls(ctx.config.publicUrl, ca.id),
      certificate: toPem(ca.certificateDer),
      // Cross-certificates of a root rollover and certificates replaced by `ca renew`: those for
      // this CA's key and those this CA signed for another's.
      caCertificates: [...(await ctx.stores.cas.caCertificates({ caId: ca.id })), ...(await ctx.stores.cas.caCertificates({ issuerId: ca.id }))].map((x) => ({
        id: x.id,
        caId: x.caId,
        issuerId: x.issuerId,
        kind: x.kind,
        serial: x.serial,
        fingerprintSha256: x.fingerprint,
        notBefore: x.notBefore,
        notAfter: x.notAfter,
        status: x.status,
        url: `${ctx.config.publicUrl}/pki/${x.id}.crt`,
      })),
    });
  });
  return r;
}

/** 201 for a CA made by POST /cas or POST /cas/roots: where it is, and caCreatedResponse. */
function sendCreated(res: Response, row: { id: string; subject: string; parentId: string | null; fingerprint: string; certificateDer: Uint8Array }): void {
  res
    .status(201)
    .location(`/api/v1/cas/${row.id}`)
    .json({ id: row.id, subject: row.subject, parentId: row.parentId, fingerprint: row.fingerprint, certificate: toPem(row.certificateDer) });
}
