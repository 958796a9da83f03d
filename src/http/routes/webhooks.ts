/**
 * Event webhooks under /api/v1/webhooks (ca/webhooks.ts), all with the admin scope. The secret
 * is in the 201 of the registration only; no other answer carries it.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { CaContext } from '../../ca/context.js';
import { createWebhookSchema, type WebhookService } from '../../ca/webhooks.js';
import { requesterOf, requireAuth } from '../auth.js';
import { noQuery, pathParams, queryParams } from '../params.js';
import { parseBody } from '../validate.js';

const id = z.string().regex(/^wh_[0-9a-f]{16}$/, 'must be a webhook id (wh_ and 16 hex digits)');
const webhookPath = z.object({ id }).strict();
// The delivery first: a bad one is named even when the webhook id is wrong too.
const deliveryPath = z.object({ delivery: z.string().regex(/^dl_[0-9a-f]{16}$/, 'must be a delivery id (dl_ and 16 hex digits)'), id }).strict();

/** `webhooks` is looked up per request (the authorisation matrix builds this router without services). */
export function webhookRoutes(ctx: CaContext, webhooks: () => WebhookService): Router {
  const r = Router();
  r.post('/webhooks', requireAuth(ctx, 'webhook.create'), async (req, res) => {
    queryParams(noQuery, req.query);
    const created = await webhooks().create(parseBody(createWebhookSchema, req.body), requesterOf(req));
    res.status(201).set('Cache-Control', 'no-store').json(created);
  });
  r.get('/webhooks', requireAuth(ctx, 'webhook.list'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.json({ items: await webhooks().list(requesterOf(req)) });
  });
  r.get('/webhooks/:id', requireAuth(ctx, 'webhook.read'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.json(await webhooks().show(pathParams(webhookPath, req.params).id, requesterOf(req)));
  });
  r.delete('/webhooks/:id', requireAuth(ctx, 'webhook.delete'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.json(await webhooks().remove(pathParams(webhookPath, req.params).id, requesterOf(req)));
  });
  r.post('/webhooks/:id/deliveries/:delivery/retry', requireAuth(ctx, 'webhook.retry'), async (req, res) => {
    queryParams(noQuery, req.query);
    const p = pathParams(deliveryPath, req.params);
    res.json(await webhooks().retry(p.id, p.delivery, requesterOf(req)));
  });
  return r;
}
