import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { SignetError } from '../../errors.js';
import { createServices } from '../../runtime/services.js';
import { createWebhookSchema } from '../../ca/webhooks.js';
import { parseBody } from '../../http/validate.js';
import { printJson, printTable, withSignet } from '../runtime.js';
import { cliRequester } from './certificates.js';

const list = (v: string) =>
  v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

export function webhookCommand(): Command {
  const webhook = new Command('webhook').description(
    'event webhooks: signed POSTs to a receiver for certificate.issued, certificate.revoked, certificate.at_risk, crl.published and ca.* events (add, list, show, remove, retry)',
  );
  webhook
    .command('add <url>')
    .description('register a receiver; prints its signing secret once (generated unless --secret-file is given)')
    .requiredOption(
      '--events <events>',
      'comma-separated events: certificate.issued, certificate.revoked, certificate.at_risk, crl.published, ca.* (or one ca.… event)',
    )
    .option('--secret-file <file>', 'read the signing secret from this file (first line) instead of generating one')
    .option('--json', 'print JSON')
    .action(async (url: string, o) =>
      withSignet(async (ctx, env) => {
        const secret = o.secretFile ? readFileSync(o.secretFile, 'utf8').split(/\r?\n/)[0] : undefined;
        const input = parseBody(createWebhookSchema, { url, events: list(o.events), ...(secret !== undefined ? { secret } : {}) });
        const w = await createServices(ctx, env.config).webhooks.create(input, cliRequester());
        if (o.json) printJson(w);
        else process.stdout.write(`registered webhook ${w.id}: ${w.events.join(', ')} → ${w.url}\nsigning secret (shown only now): ${w.secret}\n`);
      }),
    );
  webhook
    .command('list')
    .description('list webhooks with their pending attempts and dead letters (each dead letter with its id, for `signet webhook retry`)')
    .option('--json', 'print JSON')
    .action(async (o) =>
      withSignet(async (ctx, env) => {
        const service = createServices(ctx, env.config).webhooks;
        const items = await service.list(cliRequester());
        const dead = await Promise.all(
          items.filter((w) => w.deadLetters > 0).map(async (w) => ({ webhook: w.id, letters: (await service.show(w.id, cliRequester())).deadLetterList })),
        );
        if (o.json) {
          printJson(items.map((w) => ({ ...w, deadLetterList: dead.find((d) => d.webhook === w.id)?.letters ?? [] })));
          return;
        }
        printTable(items.map((w) => ({ ...w, events: w.events.join(',') })) as unknown as Record<string, unknown>[], [
          'id',
          'url',
          'events',
          'attempts',
          'nextAttemptAt',
          'deadLetters',
          'lastError',
        ]);
        const rows = dead.flatMap((d) =>
          d.letters.map((l) => ({
            webhook: d.webhook,
            delivery: l.id,
            event: l.eventId,
            type: l.type,
            status: l.status,
            attempts: l.attempts,
            lastError: l.lastError,
          })),
        );
        if (rows.length) {
          process.stdout.write('\ndead letters:\n');
          printTable(rows, ['webhook', 'delivery', 'event', 'type', 'status', 'attempts', 'lastError']);
        }
      }),
    );
  webhook
    .command('show <id>')
    .description('a webhook with its recent deliveries and its dead letters')
    .option('--json', 'print JSON')
    .action(async (id: string, o) =>
      withSignet(async (ctx, env) => {
        const w = await createServices(ctx, env.config).webhooks.show(id, cliRequester());
        if (o.json) printJson(w);
        else {
          const { deliveries, deadLetterList, ...rest } = w;
          printTable([{ ...rest, events: rest.events.join(',') }] as unknown as Record<string, unknown>[], [
            'id',
            'url',
            'events',
            'backlog',
            'attempts',
            'deadLetters',
            'lastError',
          ]);
          process.stdout.write('\n');
          printTable([...deadLetterList, ...deliveries.filter((d) => d.status !== 'dead')] as unknown as Record<string, unknown>[], [
            'id',
            'eventId',
            'type',
            'status',
            'attempts',
            'updatedAt',
            'lastError',
          ]);
        }
      }),
    );
  webhook
    .command('remove <id>')
    .description('delete a webhook, its deliveries and dead letters')
    .action(async (id: string) =>
      withSignet(async (ctx, env) => {
        await createServices(ctx, env.config).webhooks.remove(id, cliRequester());
        process.stdout.write(`removed webhook ${id}\n`);
      }),
    );
  webhook
    .command('retry <id> <delivery>')
    .description("send a dead letter again, once, at the webhook's next attempt (back to dead if it fails)")
    .action(async (id: string, delivery: string) =>
      withSignet(async (ctx, env) => {
        const d = await createServices(ctx, env.config).webhooks.retry(id, delivery, cliRequester());
        if (d.status !== 'retrying') throw new SignetError('internal', `delivery ${delivery} is ${d.status}`);
        process.stdout.write(`delivery ${delivery} of webhook ${id} will be sent again\n`);
      }),
    );
  return webhook;
}
