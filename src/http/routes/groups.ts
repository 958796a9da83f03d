/**
 * Key groups under /api/v1/groups (groups/service.ts): managed with the admin scope, read with
 * the groups scope (a token may be limited to named groups; authorization.ts authorizeGroup).
 * The welcome and the rekey message are DER CMS (application/pkcs7-mime), never cached.
 */
import { Router } from 'express';
import { z } from 'zod';
import type { CaContext } from '../../ca/context.js';
import type { GroupService } from '../../groups/service.js';
import { requesterOf, requireAuth } from '../auth.js';
import { noQuery, pathParams, queryParams, serial } from '../params.js';
import { parseBody } from '../validate.js';
import { SignetError } from '../../errors.js';

const groupRef = z.string().regex(/^(grp_[0-9a-f]{16}|[a-z0-9][a-z0-9-]{0,62})$/, 'must be a key group id (grp_ and 16 hex digits) or name');
const createSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be 1–63 lower-case letters, digits and hyphens, starting with a letter or digit'),
    profile: z.string().min(1).max(64).optional(),
  })
  .strict();
const addSchema = z.object({ serial }).strict();
const groupPath = z.object({ id: groupRef }).strict();
const memberPath = z.object({ id: groupRef, serial }).strict();
const rekeyQuery = z
  .object({
    since: z
      .string()
      .regex(/^(0|[1-9]\d{0,9})$/, 'must be an epoch: a whole number from 0')
      .transform((s) => Number(s))
      // Optional to the schema so that an unknown parameter is named first; required below.
      .optional(),
  })
  .strict();

const CMS = 'application/pkcs7-mime';

export function groupRoutes(ctx: CaContext, groups: GroupService): Router {
  const r = Router();
  r.post('/groups', requireAuth(ctx, 'group.create'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.status(201).json(await groups.create(parseBody(createSchema, req.body), requesterOf(req)));
  });
  r.get('/groups', requireAuth(ctx, 'group.read'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.json({ items: await groups.list(requesterOf(req)) });
  });
  r.get('/groups/:id', requireAuth(ctx, 'group.read'), async (req, res) => {
    queryParams(noQuery, req.query);
    const { memberList, ...g } = await groups.show(pathParams(groupPath, req.params).id, requesterOf(req));
    res.json({ ...g, memberList });
  });
  r.post('/groups/:id/members', requireAuth(ctx, 'group.member.add'), async (req, res) => {
    queryParams(noQuery, req.query);
    const p = pathParams(groupPath, req.params);
    const b = parseBody(addSchema, req.body);
    res.status(201).json(await groups.add(p.id, b.serial, requesterOf(req)));
  });
  r.delete('/groups/:id/members/:serial', requireAuth(ctx, 'group.member.remove'), async (req, res) => {
    queryParams(noQuery, req.query);
    const p = pathParams(memberPath, req.params);
    res.json(await groups.remove(p.id, p.serial, requesterOf(req)));
  });
  r.get('/groups/:id/members/:serial/welcome', requireAuth(ctx, 'group.welcome'), async (req, res) => {
    queryParams(noQuery, req.query);
    const p = pathParams(memberPath, req.params);
    const w = await groups.welcome(p.id, p.serial, requesterOf(req));
    res
      .status(200)
      .type(CMS)
      .set({ 'Cache-Control': 'no-store', 'Signet-Group-Epoch': String(w.epoch) })
      .send(w.der);
  });
  r.get('/groups/:id/rekey', requireAuth(ctx, 'group.rekey'), async (req, res) => {
    const p = pathParams(groupPath, req.params);
    const q = queryParams(rekeyQuery, req.query);
    if (q.since === undefined) throw new SignetError('bad-request', 'since: required: the epoch whose keys the member holds (0 for a new member)');
    const m = await groups.rekey(p.id, q.since, requesterOf(req));
    res
      .status(200)
      .type(CMS)
      .set({ 'Cache-Control': 'no-store', 'Signet-Group-Epoch': String(m.epoch) })
      .send(m.der);
  });
  return r;
}
