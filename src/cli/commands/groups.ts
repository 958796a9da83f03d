import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { SignetError } from '../../errors.js';
import { createServices } from '../../runtime/services.js';
import { printJson, printTable, withSignet } from '../runtime.js';
import { cliRequester, writeSecretFile } from './certificates.js';

/** Writes DER to a file, or to stdout when it is not a terminal; refuses to spill binary on a terminal. */
function deliver(der: Buffer, out: string | undefined, what: string): void {
  if (out) {
    writeSecretFile(out, der);
    process.stderr.write(`wrote ${what} (${der.length} bytes, DER) to ${out}\n`);
    return;
  }
  if (process.stdout.isTTY) throw new SignetError('bad-request', `${what} is binary DER: pass --out FILE or redirect stdout`);
  process.stdout.write(der);
}

/**
 * DIR/NAME, written as a new file (O_EXCL, mode 0600) and renamed into place: whatever is
 * already at NAME — a symlink another user planted, a file with a wider mode — is replaced,
 * never followed or reused.
 */
function writeIntoDir(dir: string, name: string, data: Buffer): void {
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeFileSync(fd, data);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, join(dir, name));
}

function parseSince(v: string): number {
  if (!/^(0|[1-9]\d{0,9})$/.test(v)) throw new SignetError('bad-request', `--since ${JSON.stringify(v)} is not an epoch: a whole number from 0`);
  return Number(v);
}

export function groupCommand(): Command {
  const group = new Command('group').description(
    'key groups: a group key delivered to member certificates and re-keyed in O(log n) when members join or leave (create, list, show, add, remove, welcome, rekey)',
  );
  group
    .command('create <name>')
    .description('create a key group (its members are certificates of --profile, group-member by default)')
    .option(
      '--profile <profile>',
      'the profile members must hold certificates of (default group-member: keyAgreement for ECDSA, keyEncipherment for RSA and ML-KEM-768)',
    )
    .option('--json', 'print JSON')
    .action(async (name: string, o) =>
      withSignet(async (ctx, env) => {
        const g = await createServices(ctx, env.config).groups.create({ name, ...(o.profile ? { profile: o.profile } : {}) }, cliRequester());
        if (o.json) printJson(g);
        else process.stdout.write(`created key group ${g.name} (${g.id}), members of profile ${g.profile}\n`);
      }),
    );
  group
    .command('list')
    .description('list key groups with their epoch and member count')
    .option('--json', 'print JSON')
    .action(async (o) =>
      withSignet(async (ctx, env) => {
        const items = await createServices(ctx, env.config).groups.list(cliRequester());
        if (o.json) printJson(items);
        else printTable(items as unknown as Record<string, unknown>[], ['name', 'id', 'profile', 'epoch', 'members', 'treeHeight', 'createdAt']);
      }),
    );
  group
    .command('show <group>')
    .description('a key group (by name or id) and its members (the first 1,000)')
    .option('--json', 'print JSON')
    .action(async (ref: string, o) =>
      withSignet(async (ctx, env) => {
        const g = await createServices(ctx, env.config).groups.show(ref, cliRequester());
        if (o.json) printJson(g);
        else {
          const { memberList, ...rest } = g;
          printTable([rest as unknown as Record<string, unknown>], ['name', 'id', 'profile', 'epoch', 'members', 'treeHeight']);
          process.stdout.write('\n');
          printTable(memberList as unknown as Record<string, unknown>[], ['serial', 'leaf', 'joinedEpoch', 'joinedAt']);
        }
      }),
    );
  group
    .command('add <group> [serials...]')
    .description(
      "add a certificate (by serial) as a member: its path in the group's key tree is re-keyed (one epoch). Several serials (or --serials-file) fill an empty group at once, as one epoch",
    )
    .option('--serials-file <file>', 'one serial per line (an empty group only)')
    .option('--json', 'print JSON')
    .action(async (ref: string, given: string[], o) =>
      withSignet(async (ctx, env) => {
        const serials = [...given, ...(o.serialsFile ? readFileSync(o.serialsFile, 'utf8').split(/\s+/).filter(Boolean) : [])];
        if (serials.length === 0) throw new SignetError('bad-request', 'name a certificate serial (or --serials-file FILE)');
        const { groups } = createServices(ctx, env.config);
        if (serials.length === 1) {
          const r = await groups.add(ref, serials[0]!, cliRequester());
          if (o.json) printJson(r);
          else process.stdout.write(`added ${serials[0]} to ${r.group.name} at leaf ${r.leaf}: epoch ${r.epoch}, ${r.wraps} key wraps\n`);
          return;
        }
        const r = await groups.addMany(ref, serials, cliRequester());
        if (o.json) printJson(r);
        else process.stdout.write(`added ${r.members} members to ${r.group.name}: epoch ${r.epoch}, a tree of height ${r.group.treeHeight}\n`);
      }),
    );
  group
    .command('remove <group> <serial>')
    .description('remove a member: its path is re-keyed so it reads no later epoch (revoking, holding or the expiry of its certificate does the same)')
    .option('--json', 'print JSON')
    .action(async (ref: string, serial: string, o) =>
      withSignet(async (ctx, env) => {
        const r = await createServices(ctx, env.config).groups.remove(ref, serial, cliRequester());
        if (o.json) printJson(r);
        else process.stdout.write(`removed ${serial} from ${r.group.name}: epoch ${r.epoch}, ${r.wraps} key wraps\n`);
      }),
    );
  group
    .command('welcome <group> [serial]')
    .description("a member's path keys as a CMS EnvelopedData (DER) addressed to its certificate; --all-to DIR: every member's, one file each")
    .option('--out <file>', 'write the DER here (mode 0600) instead of stdout')
    .option('--all-to <dir>', "write every member's welcome to DIR/<serial>.der (mode 0600), with a progress line")
    .addHelpText('after', '\nThe member reads it with: openssl cms -decrypt -inform DER -in welcome.der -inkey member.key -recip member.crt')
    .action(async (ref: string, serial: string | undefined, o) =>
      withSignet(async (ctx, env) => {
        const { groups } = createServices(ctx, env.config);
        if (o.allTo) {
          if (serial) throw new SignetError('bad-request', 'give a serial or --all-to, not both');
          mkdirSync(o.allTo, { recursive: true, mode: 0o700 });
          let n = 0;
          const total = (await groups.show(ref, cliRequester())).members;
          for await (const w of groups.allWelcomes(ref, cliRequester())) {
            writeIntoDir(o.allTo, `${w.serial}.der`, w.der);
            if (++n % 1000 === 0 && process.stderr.isTTY) process.stderr.write(`\r${n} of ${total} welcomes`);
          }
          process.stderr.write(`${process.stderr.isTTY ? '\r' : ''}wrote ${n} welcomes to ${o.allTo}\n`);
          return;
        }
        if (!serial) throw new SignetError('bad-request', 'name the member (its certificate serial), or --all-to DIR');
        const w = await groups.welcome(ref, serial, cliRequester());
        deliver(w.der, o.out, `the welcome of ${serial} (epoch ${w.epoch})`);
      }),
    );
  group
    .command('rekey <group>')
    .description('the node updates after epoch --since, signed by the group controller (CMS SignedData, DER)')
    .requiredOption('--since <epoch>', 'the epoch the member holds keys of')
    .option('--out <file>', 'write the DER here instead of stdout')
    .addHelpText(
      'after',
      '\nVerify with: openssl cms -verify -inform DER -in rekey.der -CAfile root.pem -out content.der\nEach update is an EnvelopedData with one KEK recipient per child key: openssl cms -decrypt -secretkey <hex> -secretkeyid <hex of "group/node/version">',
    )
    .action(async (ref: string, o) =>
      withSignet(async (ctx, env) => {
        const m = await createServices(ctx, env.config).groups.rekey(ref, parseSince(o.since), cliRequester());
        deliver(m.der, o.out, `the rekey message to epoch ${m.epoch}`);
      }),
    );
  return group;
}
