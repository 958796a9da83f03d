import { Command } from 'commander';
import { SignetError } from '../../errors.js';
import {
  createEnrollmentCredential,
  ENROLLMENT_PROTOCOLS,
  listEnrollmentCredentials,
  revokeEnrollmentCredential,
  type EnrollmentProtocol,
} from '../../ca/enrollment-credentials.js';
import { printJson, printTable, withSignet } from '../runtime.js';
import { cliActor } from './certificates.js';

/** The default life of a credential made at the CLI: long enough to ship a device, short enough not to linger. */
export const DEFAULT_ENROLLMENT_EXPIRY = '7d';
const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** '30m', '24h', '7d', '2w', or 'never' (null). */
export function parseExpiresIn(value: string): number | null {
  if (value === 'never') return null;
  const m = /^(\d{1,6})([mhdw])$/.exec(value);
  if (!m || Number(m[1]) === 0)
    throw new SignetError(
      'bad-request',
      `--expires-in ${JSON.stringify(value)} is not a duration: use a positive number with m, h, d or w (30m, 24h, 7d, 2w), or never`,
    );
  return Number(m[1]) * UNITS[m[2]!]!;
}

const split = (v?: string) =>
  v
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : undefined;

export function enrollCommand(): Command {
  const enroll = new Command('enroll').description('manage device enrollment credentials for EST and SCEP (create, list, revoke)');
  enroll
    .command('create')
    .description(
      'create an enrollment credential; its secret is printed once and never stored. EST: the device authenticates with HTTP Basic, user name = the id, password = the secret. SCEP: the secret is the challenge password.',
    )
    .requiredOption('--profile <profile>', 'the profile the device enrolls under (a configured profile: GET /api/v1/profiles lists them)')
    .option('--protocol <protocol>', `${ENROLLMENT_PROTOCOLS.join(' or ')}`, 'est')
    .option('--names <list>', 'comma-separated name suffixes the device may request names under (default: whatever the profile allows)')
    .option('--uses <n>', 'how many certificates it can enroll', '1')
    .option('--expires-in <duration>', `expire after 30m, 24h, 7d, 2w…, or never`, DEFAULT_ENROLLMENT_EXPIRY)
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Examples:
  signet enroll create --profile server --names gw1.corp.example
      one EST enrollment of gw1.corp.example (and names under it), valid 7 days
  signet enroll create --profile devices --protocol scep --uses 50 --expires-in 24h
      a SCEP challenge password for 50 devices, valid one day

EST clients take the id and secret as HTTP Basic credentials; strongSwan: pki --est --url <EST URL> --userpass <id>:<secret> …`,
    )
    .action(async (o) =>
      withSignet(async (ctx) => {
        const protocol = String(o.protocol);
        if (!(ENROLLMENT_PROTOCOLS as readonly string[]).includes(protocol))
          throw new SignetError('bad-request', `--protocol must be ${ENROLLMENT_PROTOCOLS.join(' or ')}, not ${JSON.stringify(protocol)}`);
        if (!/^\d{1,7}$/.test(String(o.uses))) throw new SignetError('bad-request', `--uses must be a positive whole number, not ${JSON.stringify(o.uses)}`);
        const ms = parseExpiresIn(String(o.expiresIn));
        const names = split(o.names);
        if (o.names !== undefined && !names?.length) throw new SignetError('bad-request', '--names must name at least one suffix');
        const made = await createEnrollmentCredential(
          ctx,
          {
            protocol: protocol as EnrollmentProtocol,
            profile: String(o.profile),
            nameSuffixes: names ?? null,
            uses: Number(o.uses),
            expiresAt: ms === null ? null : new Date(ctx.now().getTime() + ms),
          },
          { actor: cliActor() },
        );
        const c = made.credential;
        if (o.json) {
          printJson({ ...made, ...(c.protocol === 'est' ? { userpass: `${made.id}:${made.secret}` } : {}) });
          return;
        }
        const limits = `${c.protocol.toUpperCase()}, profile ${c.profile}${c.nameSuffixes ? `, names under ${c.nameSuffixes.join(', ')}` : ''}, ${c.usesAllowed} use${c.usesAllowed === 1 ? '' : 's'}, ${c.expiresAt ? `expires ${c.expiresAt.toISOString()}` : 'never expires'}`;
        process.stdout.write(
          `enrollment credential ${made.id} (${limits})\n` +
            (c.protocol === 'est'
              ? `user name: ${made.id}\npassword:  ${made.secret}\nstrongSwan: --userpass ${made.id}:${made.secret}\n`
              : `challenge password: ${made.secret}\n`) +
            '(shown once; store it now)\n',
        );
      }),
    );
  enroll
    .command('list')
    .description('list enrollment credentials (never their secrets)')
    .option('--json', 'print JSON')
    .action(async (o) =>
      withSignet(async (ctx) => {
        const items = await listEnrollmentCredentials(ctx);
        if (o.json) printJson(items);
        else
          printTable(
            items.map((c) => ({ ...c, uses: `${c.usesSpent}/${c.usesAllowed}`, names: c.nameSuffixes?.join(',') ?? null })),
            ['id', 'protocol', 'profile', 'names', 'uses', 'status', 'expiresAt', 'lastUsedAt', 'createdBy'],
          );
      }),
    );
  enroll
    .command('revoke')
    .description('revoke an enrollment credential; it stops working at once')
    .argument('<id>', 'credential id (enr_…, from enroll list)')
    .option('--json', 'print JSON')
    .action(async (id: string, o) =>
      withSignet(async (ctx) => {
        const c = await revokeEnrollmentCredential(ctx, id, { actor: cliActor() });
        if (o.json) printJson(c);
        else process.stdout.write(`enrollment credential ${id} revoked\n`);
      }),
    );
  return enroll;
}
