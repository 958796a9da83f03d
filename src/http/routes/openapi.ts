/**
 * GET /api/v1/openapi.json: the OpenAPI 3.1 description of /api/v1 (openapi.ts), public like
 * the software it describes — clients and tools read it before they hold a token, and it says
 * nothing about this deployment (no hosts, CAs, profiles or tokens), only what each route takes,
 * answers and needs.
 */
import { Router } from 'express';
import { z } from 'zod';
import { openOperation } from '../auth.js';
import { documentRoute, openApiDocument } from '../openapi.js';
import { noQuery, queryParams } from '../params.js';

/** The document's top level (the full check is an OpenAPI validator's, in the tests). */
export const openApiResponse = z
  .object({ openapi: z.literal('3.1.0'), info: z.object({ title: z.string(), version: z.string() }).passthrough(), paths: z.record(z.unknown()) })
  .passthrough();

/** `api`: the router mounted at /api/v1, whose routes the document describes (this one among them). */
export function openapiRoutes(api: Router): Router {
  const r = Router();
  let body: string | undefined;
  documentRoute('GET /openapi.json', {
    summary: 'This API described in OpenAPI 3.1',
    description: 'Public: no token. View it with any OpenAPI viewer (Swagger UI, Redoc) or `curl -s …/api/v1/openapi.json | jq`.',
    query: noQuery,
    responses: { 200: { description: 'The OpenAPI 3.1 document', schema: openApiResponse } },
  });
  r.get('/openapi.json', openOperation('api.describe'), (req, res) => {
    queryParams(noQuery, req.query);
    // Built at the first request, when every route of `api` is mounted; the routes never change after.
    body ??= JSON.stringify(openApiDocument(api).document);
    res.type('application/json').set('Cache-Control', 'no-cache').send(body);
  });
  return r;
}
