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
import { dateTime, documentRoute, hexString, itemsOf } from '../openapi.js';

const groupRef = z.string().regex(/^(grp_[0-9a-f]{16}|[a-z0-9][a-z0-9-]{0,62})$/, 'must be a key group id (grp_ and 16 hex digits) or name');
export const createGroupSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be 1–63 lower-case letters, digits and hyphens, starting with a letter or digit'),
    profile: z.string().min(1).max(64).optional(),
  })
  .strict();
export const addMemberSchema = z.object({ serial }).strict();
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

// ---- Responses (the OpenAPI document's, checked against real answers in test/openapi.test.ts)

export const groupResponse = z
  .object({
    id: z.string().regex(/^grp_[0-9a-f]{16}$/),
    name: z.string(),
    profile: z.string(),
    epoch: z.number().int(),
    members: z.number().int(),
    treeHeight: z.number().int(),
    createdAt: dateTime,
    createdBy: z.string(),
  })
  .strict();
export const groupDetailResponse = groupResponse
  .extend({
    memberList: z.array(z.object({ serial: hexString, leaf: z.number().int(), joinedEpoch: z.number().int(), joinedAt: dateTime }).strict()),
  })
  .strict();
export const memberAddedResponse = z.object({ group: groupResponse, epoch: z.number().int(), leaf: z.number().int(), wraps: z.number().int() }).strict();
export const memberRemovedResponse = z.object({ group: groupResponse, epoch: z.number().int(), wraps: z.number().int() }).strict();
const CMS_HEADERS = { 'Signet-Group-Epoch': 'The epoch whose group key the message delivers' };
const NO_GROUP = { 404: 'The group (or the member) does not exist' };

export function groupRoutes(ctx: CaContext, groups: GroupService): Router {
  const r = Router();
  documentRoute('POST /groups', {
    summary: 'Create a key group',
    query: noQuery,
    body: createGroupSchema,
    responses: { 201: { description: 'The group', schema: groupResponse } },
    errors: { 409: 'A group of that name exists' },
  });
  r.post('/groups', requireAuth(ctx, 'group.create'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.status(201).json(await groups.create(parseBody(createGroupSchema, req.body), requesterOf(req)));
  });
  documentRoute('GET /groups', {
    summary: 'List the key groups the token may read',
    query: noQuery,
    responses: { 200: { description: 'The groups', schema: itemsOf(groupResponse) } },
  });
  r.get('/groups', requireAuth(ctx, 'group.read'), async (req, res) => {
    queryParams(noQuery, req.query);
    res.json({ items: await groups.list(requesterOf(req)) });
  });
  documentRoute('GET /groups/:id', {
    summary: 'One key group and its members (the first 1000)',
    params: groupPath,
    query: noQuery,
    responses: { 200: { description: 'The group', schema: groupDetailResponse } },
    errors: NO_GROUP,
  });
  r.get('/groups/:id', requireAuth(ctx, 'group.read'), async (req, res) => {
    queryParams(noQuery, req.query);
    const { memberList, ...g } = await groups.show(pathParams(groupPath, req.params).id, requesterOf(req));
    res.json({ ...g, memberList });
  });
  documentRoute('POST /groups/:id/members', {
    summary: 'Add a member certificate (the group advances one epoch)',
    params: groupPath,
    query: noQuery,
    body: addMemberSchema,
    responses: { 201: { description: 'Added', schema: memberAddedResponse } },
    errors: { ...NO_GROUP, 409: 'Already a member, or the certificate cannot join (profile, status)' },
  });
  r.post('/groups/:id/members', requireAuth(ctx, 'group.member.add'), async (req, res) => {
    queryParams(noQuery, req.query);
    const p = pathParams(groupPath, req.params);
    const b = parseBody(addMemberSchema, req.body);
    res.status(201).json(await groups.add(p.id, b.serial, requesterOf(req)));
  });
  documentRoute('DELETE /groups/:id/members/:serial', {
    summary: 'Remove a member (the group advances one epoch; the member can read no later one)',
    params: memberPath,
    query: noQuery,
    responses: { 200: { description: 'Removed', schema: memberRemovedResponse } },
    errors: NO_GROUP,
  });
  r.delete('/groups/:id/members/:serial', requireAuth(ctx, 'group.member.remove'), async (req, res) => {
    queryParams(noQuery, req.query);
    const p = pathParams(memberPath, req.params);
    res.json(await groups.remove(p.id, p.serial, requesterOf(req)));
  });
  documentRoute('GET /groups/:id/members/:serial/welcome', {
    summary: "A member's welcome: its key-tree path and the group key, encrypted to its certificate (DER CMS)",
    params: memberPath,
    query: noQuery,
    responses: { 200: { description: 'The welcome', contentType: CMS, headers: CMS_HEADERS } },
    errors: NO_GROUP,
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
  documentRoute('GET /groups/:id/rekey', {
    summary: 'The signed rekey message from epoch `since` to the current one (DER CMS)',
    params: groupPath,
    // The route requires since itself (so that an unknown parameter is named first).
    query: rekeyQuery.required({ since: true }),
    responses: { 200: { description: 'The rekey message', contentType: CMS, headers: CMS_HEADERS } },
    errors: NO_GROUP,
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
