/**
 * Root-ness and CA chains come from the certificates, never from the unprotected
 * `CertificateAuthority.parentId` column (attack round 2, finding A). In this process, over
 * the real stores on a real database (SQLite, or PostgreSQL under SIGNET_TEST_POSTGRES); the
 * rows are changed with SQL as a database writer without the master key would:
 *   - the root given a parent (an intermediate under it; pathLen 0 in its row too): it still
 *     never signs a leaf, never becomes the default issuer, cannot be revoked as a child;
 *   - the resulting cycle (root → intermediate → root) ends every chain walk at once;
 *   - an intermediate pointed at a CA that did not issue it: refused (409 naming both);
 *   - `signet audit verify` names each row whose parentId disagrees with its certificate.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import pino from 'pino';
import { loadConfig } from '../src/config/config.js';
import { openSignet } from '../src/runtime/open.js';
import type { CaContext } from '../src/ca/context.js';
import { createHierarchy, createIntermediate } from '../src/ca/hierarchy.js';
import { CaEvents } from '../src/ca/events.js';
import { IssuerRegistry } from '../src/ca/issuers.js';
import { Issuance, type Requester } from '../src/ca/issuance.js';
import { Revocation } from '../src/ca/revocation.js';
import { loadProfiles } from '../src/ca/profiles.js';
import { isSignetError } from '../src/errors.js';
import { buildCsr } from '../src/pki/csr-builder.js';
import { ownKey } from '../src/pki/keys.js';
import { walkCaChain } from '../src/ca/ca-chain-check.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';
import { sql } from './helpers/sql.js';
import { signetAsync } from './helpers/cli.js';
import { StatusBus } from '../src/ca/status-bus.js';

const operator: Requester = { principal: { kind: 'operator', actor: 'chain-test' } };

async function csr(name: string): Promise<Buffer> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return buildCsr(ownKey(privateKey), undefined, [{ type: 'dns', value: name }]);
}

/** The error a call fails with ('ok' if none); a call still running after `ms` is a hang. */
async function outcome(p: Promise<unknown>, ms = 5_000): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('hang'), ms);
  });
  try {
    return await Promise.race([
      p.then(
        () => 'ok',
        (e) => {
          if (isSignetError(e)) return `${e.type}: ${e.detail}`;
          throw e;
        },
      ),
      hang,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('CA chains decided by the certificates, not parentId', { concurrency: false }, () => {
  let env: TestEnv;
  let ctx: CaContext;
  let rootId: string;
  let intId: string;
  let otherId: string;
  const profiles = loadProfiles(undefined);
  /** Issuance with no cached issuer: what the rows say now (as after a restart). */
  const fresh = () => new Issuance(ctx, new IssuerRegistry(ctx), profiles, new CaEvents());

  before(async () => {
    env = await createTestEnv();
    ctx = await openSignet(loadConfig(env.env), pino({ level: 'silent' }));
    const ca = { keyAlgorithm: 'ecdsa-p256' as const, validityDays: 3650 };
    const h = await createHierarchy(ctx, { subject: 'CN=Chain Root', ...ca }, { subject: 'CN=Chain Issuing', ...ca, pathLen: 0 });
    rootId = h.root.id;
    intId = h.intermediate.id;
    otherId = (await createIntermediate(ctx, rootId, { subject: 'CN=Chain Other', ...ca, pathLen: 0 })).id;
  });
  after(async () => {
    await ctx?.db.close();
    await env?.cleanup();
  });

  test('untouched: leaves come from the intermediate, the chain is the intermediate alone, the root is refused', async () => {
    const issued = await fresh().issue({ csr: await csr('a.chain.test'), profile: 'server' }, operator);
    assert.equal(issued.caId, intId);
    const intPem = (await fresh().issue({ csr: await csr('b.chain.test'), profile: 'server', caId: intId }, operator)).chain;
    assert.equal(issued.chain, intPem);
    assert.match(
      await outcome(fresh().issue({ csr: await csr('c.chain.test'), profile: 'server', caId: rootId }, operator)),
      /^policy: CA root-[0-9a-f]+ is a root CA/,
    );
  });

  test('the root given a parent (and pathLen 0) stays a root: no leaf, not the default, not revocable; no chain walk loops', async () => {
    await sql(env, 'UPDATE "CertificateAuthority" SET "parentId" = ?, "pathLen" = 0 WHERE id = ?', [intId, rootId]);
    // The oldest "intermediate" with pathLen 0 in its row is now the root: the default must not be it.
    const byDefault = fresh().issue({ csr: await csr('default.chain.test'), profile: 'server' }, operator);
    assert.equal(await outcome(byDefault), 'ok');
    assert.equal((await byDefault).caId, intId);
    assert.match(
      await outcome(fresh().issue({ csr: await csr('rooted.chain.test'), profile: 'server', caId: rootId }, operator)),
      new RegExp(`^policy: CA ${rootId} is a root CA: a root signs only intermediate CAs`),
    );
    // The cycle root → intermediate → root: the walk from the intermediate stops at the root.
    const fromInt = await outcome(fresh().issue({ csr: await csr('cycle.chain.test'), profile: 'server', caId: intId }, operator));
    assert.equal(fromInt, 'ok');
    const row = (await ctx.stores.cas.get(intId))!;
    const walked = await walkCaChain(row, (id) => ctx.stores.cas.get(id));
    assert.deepEqual(
      walked.chain.map((c) => c.id),
      [intId],
    );
    assert.equal(walked.root, false);
    const revoked = await outcome(new Revocation(ctx, new StatusBus(ctx.log), new CaEvents(), profiles).revokeCa(rootId, 'keyCompromise', operator));
    assert.match(revoked, new RegExp(`^conflict: CA ${rootId} is a root: a root cannot be revoked`));
    assert.equal((await ctx.stores.cas.get(rootId))!.status, 'active');
  });

  test('an intermediate pointed at a CA that did not issue it is refused, naming both; so is a cycle between intermediates', async () => {
    await sql(env, 'UPDATE "CertificateAuthority" SET "parentId" = ? WHERE id = ?', [otherId, intId]);
    const r = await outcome(fresh().issue({ csr: await csr('moved.chain.test'), profile: 'server', caId: intId }, operator));
    assert.match(
      r,
      new RegExp(
        `^conflict: CA ${intId}'s record names CA ${otherId} as its parent, but its certificate was issued by "CN=Chain Root", not by "CN=Chain Other"`,
      ),
    );
    await sql(env, 'UPDATE "CertificateAuthority" SET "parentId" = ? WHERE id = ?', [intId, otherId]);
    assert.match(
      await outcome(fresh().issue({ csr: await csr('loop.chain.test'), profile: 'server', caId: otherId }, operator)),
      new RegExp(`^conflict: CA ${otherId}'s record names CA ${intId} as its parent`),
    );
    const revoke = await outcome(new Revocation(ctx, new StatusBus(ctx.log), new CaEvents(), profiles).revokeCa(intId, 'superseded', operator));
    assert.match(revoke, new RegExp(`^conflict: CA ${intId}'s record names CA ${otherId} as its parent`));
  });

  test('`signet audit verify` names each CA row whose parentId disagrees with its certificate', async () => {
    const r = await signetAsync(['audit', 'verify', '--json'], env.env);
    assert.equal(r.status, 1, r.stderr);
    const problems = (JSON.parse(r.stdout).inventory.problems as { problem: string }[]).map((p) => p.problem).join('\n');
    assert.match(problems, new RegExp(`^CA ${rootId}'s row names CA ${intId} as its parent, but its certificate is a root \\(self-issued\\)`, 'm'));
    assert.match(
      problems,
      new RegExp(`^CA ${intId}'s row names CA ${otherId} as its parent, but its certificate was issued by "CN=Chain Root", not by "CN=Chain Other"`, 'm'),
    );
    assert.match(
      problems,
      new RegExp(`^CA ${otherId}'s row names CA ${intId} as its parent, but its certificate was issued by "CN=Chain Root", not by "CN=Chain Issuing"`, 'm'),
    );
    // Put right, nothing is reported about parents.
    await sql(env, 'UPDATE "CertificateAuthority" SET "parentId" = NULL WHERE id = ?', [rootId]);
    await sql(env, 'UPDATE "CertificateAuthority" SET "parentId" = ? WHERE id IN (?, ?)', [rootId, intId, otherId]);
    const ok = await signetAsync(['audit', 'verify', '--json'], env.env);
    assert.doesNotMatch(
      JSON.parse(ok.stdout)
        .inventory.problems.map((p: { problem: string }) => p.problem)
        .join('\n'),
      /as its parent/,
    );
  });
});
