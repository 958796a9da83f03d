import { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { SignetError } from '../../errors.js';
import { createToken, listTokens, revokeToken, SCOPES, type Scope } from '../../ca/tokens.js';
import { auditTrailOf } from '../../ca/audit.js';
import { checkpointerOf } from '../../ca/audit-checkpoints.js';
import { recoverAudit, verifyAudit } from '../../ca/audit-verify.js';
import { rowIntegrity } from '../../ca/row-integrity.js';
import type { CaContext } from '../../ca/context.js';
import { listAudit } from '../../ca/audit-query.js';
import { printJson, printTable, withSignet } from '../runtime.js';
import { cliActor } from './certificates.js';

function parseDate(value: string | undefined, flag: string): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new SignetError('bad-request', `${flag} ${value} is not a date (use ISO 8601, e.g. 2027-01-01T00:00:00Z)`);
  return d;
}

export function tokenCommand(): Command {
  const token = new Command('token').description('manage API tokens (create, list, revoke)');
  token
    .command('create')
    .description('create an API token; the secret is printed once and never stored')
    .requiredOption('--name <name>', 'what the token is for')
    .requiredOption('--scopes <list>', `comma-separated: ${SCOPES.join(', ')}`)
    .option('--profiles <list>', 'comma-separated profiles this token may use (default: any)')
    .option('--groups <list>', "comma-separated key groups the 'groups' scope may read (default: every group)")
    .option('--name-suffixes <list>', 'comma-separated DNS suffixes this token may request (default: any)')
    .option('--expires-in-days <n>', 'expire after this many days')
    .option('--json', 'print JSON')
    .action(async (o) =>
      withSignet(async (ctx) => {
        const scopes = String(o.scopes)
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        for (const s of scopes)
          if (!(SCOPES as readonly string[]).includes(s)) throw new SignetError('bad-request', `unknown scope ${s}; use ${SCOPES.join(', ')}`);
        if (!scopes.length) throw new SignetError('bad-request', '--scopes must name at least one scope');
        let expiresAt: Date | undefined;
        if (o.expiresInDays !== undefined) {
          const n = Number(o.expiresInDays);
          if (!(n > 0) || !Number.isFinite(n)) throw new SignetError('bad-request', '--expires-in-days must be a positive number');
          expiresAt = new Date(ctx.now().getTime() + n * 86_400_000);
        }
        const split = (v?: string) =>
          v
            ? v
                .split(',')
                .map((s) => s.trim())
                .filter(Boolean)
            : undefined;
        const t = await createToken(
          ctx,
          { name: o.name, scopes: scopes as Scope[], profiles: split(o.profiles), nameSuffixes: split(o.nameSuffixes), groups: split(o.groups), expiresAt },
          cliActor(),
        );
        if (o.json) printJson(t);
        else
          process.stdout.write(
            `token ${t.id} (${t.scopes.join(',')})${expiresAt ? ` expires ${expiresAt.toISOString()}` : ''}\n${t.token}\n(shown once; store it now)\n`,
          );
      }),
    );
  token
    .command('list')
    .description('list API tokens (never their secrets)')
    .option('--json', 'print JSON')
    .action(async (o) =>
      withSignet(async (ctx) => {
        const items = await listTokens(ctx);
        if (o.json) printJson(items);
        else
          printTable(
            items.map((t) => ({
              ...t,
              scopes: t.scopes.join(','),
              state: t.revokedAt ? 'revoked' : t.expiresAt && t.expiresAt <= new Date() ? 'expired' : 'active',
            })),
            ['id', 'name', 'scopes', 'state', 'lastUsedAt', 'expiresAt'],
          );
      }),
    );
  token
    .command('revoke')
    .description('revoke an API token; it stops working at once')
    .argument('<id>', 'token id (from token list)')
    .action(async (id: string) =>
      withSignet(async (ctx) => {
        await revokeToken(ctx, id, cliActor());
        process.stdout.write(`token ${id} revoked\n`);
      }),
    );
  return token;
}

export function auditCommand(): Command {
  const audit = new Command('audit').description('read and verify the tamper-evident audit trail');
  const filters = (c: Command) =>
    c
      .option('--action <action>', 'e.g. certificate.issued')
      .option('--actor <actor>', 'e.g. token:tok-1234abcd, cli:root, system')
      .option('--target <target>', 'e.g. a serial or CA id')
      .option('--since <date>', 'from this time (ISO 8601)')
      .option('--until <date>', 'before this time (ISO 8601)');
  filters(audit.command('list').description('show audit events, newest first'))
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'print JSON')
    .action(async (o) =>
      withSignet(async (ctx) => {
        const page = await listAudit(ctx, {
          action: o.action,
          actor: o.actor,
          target: o.target,
          since: parseDate(o.since, '--since'),
          until: parseDate(o.until, '--until'),
          limit: Number(o.limit),
        });
        if (o.json) {
          printJson(page.items);
          return;
        }
        printTable(
          page.items.map((e) => ({ ...e, details: e.details ? JSON.stringify(e.details).slice(0, 60) : null })),
          ['seq', 'time', 'actor', 'action', 'target', 'outcome'],
        );
      }),
    );
  filters(audit.command('export').description('write every matching event as JSON lines, oldest first (for a SIEM or an archive)')).action(async (o) =>
    withSignet(async (ctx) => {
      let cursor: string | undefined;
      do {
        const page = await listAudit(ctx, {
          action: o.action,
          actor: o.actor,
          target: o.target,
          since: parseDate(o.since, '--since'),
          until: parseDate(o.until, '--until'),
          limit: 1000,
          order: 'asc',
          cursor,
        });
        for (const e of page.items) process.stdout.write(JSON.stringify(e) + '\n');
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
    }),
  );
  audit
    .command('verify')
    .description(
      'check the keyed chain, the signed checkpoints, that every certificate and CA has its event, and the authorisation rows (API token, enrollment credential, ACME and CA MACs and events; the uses each enrollment credential spent against its enrollment.used events); exit 1 naming each problem',
    )
    .option('--checkpoints <files...>', 'also hold the chain to these checkpoint files (copies from other hosts or from GET /api/v1/audit/checkpoints)')
    .option('--json', 'print JSON')
    .action(async (o) =>
      withSignet(async (ctx) => {
        const r = await runVerify(ctx, o.checkpoints ?? []);
        if (o.json) printJson(r);
        else if (r.ok) {
          process.stdout.write(
            `audit chain OK: ${r.events} events${r.keyedFrom ? ` (HMAC-keyed from event ${r.keyedFrom})` : ''}, head ${r.head ? `#${r.head.seq} ${r.head.hash}` : '(empty)'}\n`,
          );
          const n = r.checkpoints.newest;
          process.stdout.write(`checkpoints OK: ${r.checkpoints.count} in ${r.checkpoints.files.join(', ')}${n ? `, newest #${n.seq} at ${n.time}` : ''}\n`);
          process.stdout.write(`inventory OK: ${r.inventory.certificates} certificates and ${r.inventory.cas} CAs, each with the event that created it\n`);
          process.stdout.write(
            `authorisation state OK: ${r.inventory.tokens} API tokens, each with its token.created event and a grant MAC that verifies; ${r.inventory.enrollmentCredentials} enrollment credentials, each with its enrollment.created event, a grant MAC that verifies and one enrollment.used event per use; every ACME account and valid authorization MAC verifies\n`,
          );
        }
        if (!o.json) for (const a of [...r.checkpoints.acknowledged, ...r.inventory.acknowledged]) process.stderr.write(`signet: note: ${a.problem}\n`);
        if (!r.ok) {
          if (!o.json) {
            if (r.problem) process.stderr.write(`signet: audit chain BROKEN at event ${r.problem.seq}: ${r.problem.problem}\n`);
            for (const p of r.checkpoints.problems) process.stderr.write(`signet: audit checkpoint problem: ${p.problem}\n`);
            for (const p of r.inventory.problems) process.stderr.write(`signet: audit inventory problem: ${p.problem}\n`);
          }
          process.exitCode = 1;
        }
      }),
    );
  audit
    .command('recover')
    .description('after reading `audit verify`, record (with the master key) that you accept its findings so that Signet records changes again')
    .requiredOption('--reason <text>', 'why, for the trail (e.g. "head corrupted by a failed migration; checked against the backup of …")')
    .action(async (o) =>
      withSignet(async (ctx) => {
        const reason = String(o.reason).trim();
        if (!reason) throw new SignetError('bad-request', '--reason must say why');
        const before = await runVerify(ctx, []);
        if (before.ok) {
          process.stdout.write('nothing to recover: `signet audit verify` reports no problem\n');
          return;
        }
        const row = await recoverAudit(ctx.db, ctx.stores.audit, auditTrailOf(ctx.db), before, reason.slice(0, 1000), cliActor());
        process.stdout.write(
          `recorded audit.recovered as event ${row.seq}; Signet records changes again (running processes resume within SIGNET_AUDIT_INTERVAL_SECONDS)\n`,
        );
        const after = await runVerify(ctx, []);
        if (!after.ok) {
          process.stderr.write(
            'signet: still reported by `audit verify` (a break inside the chain is not undone by recover: restore the original events from a backup or export):\n',
          );
          if (after.problem) process.stderr.write(`signet:   chain: event ${after.problem.seq}: ${after.problem.problem}\n`);
          for (const p of [...after.checkpoints.problems, ...after.inventory.problems]) process.stderr.write(`signet:   ${p.problem}\n`);
        }
      }),
    );
  audit
    .command('checkpoints')
    .description("show this host's newest signed audit checkpoints, or the public key that verifies them")
    .option('--limit <n>', 'how many', '20')
    .option('--public-key', 'print the Ed25519 public key (PEM) that verifies the checkpoints')
    .option('--json', 'print JSON')
    .action(async (o) =>
      withSignet(async (ctx) => {
        const cp = checkpointerOf(ctx.db)!;
        if (o.publicKey) {
          process.stdout.write(cp.key.publicKeyPem);
          return;
        }
        const items = cp.recent(Math.min(Math.max(Number(o.limit) || 20, 1), 1000));
        if (o.json) printJson({ keyId: cp.key.kid, publicKey: cp.key.publicKeyPem, items });
        else
          printTable(
            items.map((i) => ({ ...i })),
            ['seq', 'time', 'keyedFrom', 'writer', 'hash'],
          );
      }),
    );
  return audit;
}

async function runVerify(ctx: CaContext, extraCheckpoints: string[]) {
  const bar = process.stderr.isTTY ? new SingleBar({ format: 'verifying [{bar}] {value}/{total}', stream: process.stderr }, Presets.shades_classic) : undefined;
  let started = false;
  const cp = checkpointerOf(ctx.db)!;
  try {
    return await verifyAudit(ctx.stores, auditTrailOf(ctx.db), {
      checkpointFiles: [cp.file, ...extraCheckpoints],
      checkpointKey: cp.key,
      rowIntegrity: rowIntegrity(ctx.keys),
      onProgress: (done, total) => {
        if (bar) {
          if (!started) {
            bar.start(total, 0);
            started = true;
          }
          bar.setTotal(total);
          bar.update(done);
        }
      },
    });
  } finally {
    if (started) bar?.stop();
  }
}
