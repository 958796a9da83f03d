/**
 * Event webhooks under /api/v1/webhooks (ca/webhooks.ts), all with the admin scope. The secret
 * is in the 201 of the registration only; no other answer carries it.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { CaContext } from '../../ca/context.js';
import { WEBHOOK_EVENTS } from '../../ca/webhook-events.js';
import { createWebhookSchema, deliveryIdSchema, webhookIdSchema, type WebhookService } from '../../ca/webhooks.js';
import { dateTime, documentRoute, itemsOf } from '../openapi.js';
import { requesterOf, requireAuth } from '../auth.js';
import { noQuery, pathParams, queryParams } from '../params.js';
import { parseBody } from '../validate.js';

const webhookPath = z.object({ id: webhookIdSchema }).strict();
// The delivery first: a bad one is named even when the webhook id is wrong too.
const deliveryPath = z.object({ delivery: deliveryIdSchema, id: webhookIdSchema }).strict();

// ---- Responses (the OpenAPI document's, checked against real answers in test/openapi.test.ts)

const events = z.array(z.enum(WEBHOOK_EVENTS));
export const webhookResponse = z
  .object({
    id: z.string(),
    url: z.string(),
    events,
    createdAt: dateTime,
    createdBy: z.string(),
    cursor: z.number().int().describe('The newest outbox event it has handled'),
    attempts: z.number().int().describe('Failed attempts at its current event'),
    nextAttemptAt: dateTime.nullable(),
    lastError: z.string().nullable(),
    deadLetters: z.number().int(),
  })
  .strict();
export const deliveryResponse = z
  .object({
    id: z.string(),
    eventId: z.number().int(),
    type: z.string(),
    status: z.enum(['delivered', 'dead', 'retrying']),
    attempts: z.number().int(),
    lastError: z.string().nullable(),
    createdAt: dateTime,
    updatedAt: dateTime,
    event: z.unknown().describe('The JSON body the receiver gets'),
  })
  .strict();
const createdResponse = z
  .object({ id: z.string(), url: z.string(), events, createdAt: dateTime, secret: z.string().describe('The HMAC secret: in this answer only') })
  .strict();
const shownResponse = webhookResponse
  .extend({ backlog: z.number().int(), deliveries: z.array(deliveryResponse), deadLetterList: z.array(deliveryResponse) })
  .strict();
const NO_WEBHOOK = { 404: 'No such webhook' };

/** `webhooks` is looked up per request (the authorisation matrix builds this router without services). */
export function webhookRoutes(ctx: CaContext, webhooks: () => WebhookService): Router {
  const r = Router();
  documentRoute('POST /webhooks', {
    summary: 'Register a webhook receiver for events (the secret is generated unless given, and shown once)',
    query: noQuery,
    body: createWebhookSchema,
    responses: { 201: { description: 'The webhook, with its secret', schema: createdResponse } },
    errors: { 409: 'The same URL already receives the same events' },
  });
  r.post('/webhooks', requireAuth(ctx, 'webhook.create'), async (req, res) => {
    queryParams(noQuery, req.query);
    const created = await webhooks().create(parseBody(createWebhookSchema, req.body), requesterOf(req));
    res.status(201).set('Cache-Control', 'no-store').json(created);
  });
  documentRoute('GET /webhooks', {
    summary: 'List the webhooks',
    query: noQuery,
    responses: { 200: { description: 'Every webhook', schema: itemsOf(webhookResponse) } },
  });
  r.get('/webhooks', requireAuth(ctx, 'webhook.list'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.json({ items: await webhooks().list(requesterOf(req)) });
  });
  documentRoute('GET /webhooks/:id', {
    summary: 'One webhook, its backlog, its latest deliveries and its dead letters',
    query: noQuery,
    params: webhookPath,
    responses: { 200: { description: 'The webhook', schema: shownResponse } },
    errors: NO_WEBHOOK,
  });
  r.get('/webhooks/:id', requireAuth(ctx, 'webhook.read'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.json(await webhooks().show(pathParams(webhookPath, req.params).id, requesterOf(req)));
  });
  documentRoute('DELETE /webhooks/:id', {
    summary: 'Remove a webhook (its undelivered events are dropped)',
    query: noQuery,
    params: webhookPath,
    responses: { 200: { description: 'Removed', schema: z.object({ id: z.string(), deleted: z.literal(true) }).strict() } },
    errors: NO_WEBHOOK,
  });
  r.delete('/webhooks/:id', requireAuth(ctx, 'webhook.delete'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.json(await webhooks().remove(pathParams(webhookPath, req.params).id, requesterOf(req)));
  });
  documentRoute('POST /webhooks/:id/deliveries/:delivery/retry', {
    summary: 'Send a dead letter again (once; dead again if it fails)',
    query: noQuery,
    params: deliveryPath,
    responses: { 200: { description: 'The delivery, now retrying', schema: deliveryResponse } },
    errors: { 404: 'No such webhook or delivery', 409: 'The delivery is not a dead letter' },
  });
  r.post('/webhooks/:id/deliveries/:delivery/retry', requireAuth(ctx, 'webhook.retry'), async (req, res) => {
    queryParams(noQuery, req.query);
    const p = pathParams(deliveryPath, req.params);
    res.json(await webhooks().retry(p.id, p.delivery, requesterOf(req)));
  });
  return r;
}
