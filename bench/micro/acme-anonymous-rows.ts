/**
 * How many durable rows one anonymous client (one address, no External Account Binding) can make
 * a Signet ACME server create: it registers fresh account keys and orders 100 identifiers at a
 * time, as fast as the server answers, for a bounded time.
 *
 *   node --import tsx bench/micro/acme-anonymous-rows.ts [seconds=30] [concurrency=8] [--deactivate]
 *
 * Strategy: each worker registers an account, then orders 100 fresh names per order until the
 * account is refused (its pending-authorization limit); with --deactivate it then deactivates
 * the pending authorizations (one request each) to order again with the same account, else it
 * registers another account. It stops when the server refuses new accounts and new orders alike
 * (the per-address limits) or when the time is up. Reports rows per table created, the rate,
 * and the statuses seen. Extra environment is passed to the server: the same run with
 * SIGNET_ACME_ACCOUNTS_PER_HOUR=0 SIGNET_ACME_ORDERS_PER_ADDRESS_PER_HOUR=0 is the behaviour
 * before those limits existed.
 *
 * Starts its own `signet serve` (dist/, so `npm run build` first) over plain HTTP on a temporary
 * SQLite data directory and removes it afterwards.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const SECONDS = Number(args[0] ?? 30);
const CONCURRENCY = Number(args[1] ?? 8);
const DEACTIVATE = process.argv.includes('--deactivate');
const ROOT = join(import.meta.dirname, '..', '..');
const TABLES = ['AcmeAccount', 'AcmeOrder', 'AcmeAuthorization', 'AcmeChallenge', 'AcmeNonce', 'AuditEvent'] as const;

const dir = mkdtempSync(join(tmpdir(), 'signet-bench-acme-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const env = { ...process.env, SIGNET_DATA_DIR: join(dir, 'data'), SIGNET_PORT: String(port), SIGNET_LOG_LEVEL: 'warn' };
const child = spawn(process.execPath, [join(ROOT, 'bin', 'signet.js'), 'serve'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
const base = `http://127.0.0.1:${port}/acme`;

const b64u = (x: Buffer | string) => Buffer.from(x).toString('base64url');
interface Key {
  privateKey: KeyObject;
  jwk: JsonWebKey;
}
const newKey = (): Key => {
  const p = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey: p.privateKey, jwk: p.publicKey.export({ format: 'jwk' }) };
};

const statuses = new Map<string, number>();
const nonces: string[] = [];
async function post(url: string, payload: unknown, key: Key, kid?: string): Promise<{ status: number; json: any; location: string | null }> {
  let nonce = nonces.pop();
  if (!nonce) nonce = (await fetch(`${base}/new-nonce`, { method: 'HEAD' })).headers.get('replay-nonce')!;
  const protectedHeader = b64u(JSON.stringify({ alg: 'ES256', nonce, url, ...(kid ? { kid } : { jwk: key.jwk }) }));
  const body = payload === '' ? '' : b64u(JSON.stringify(payload));
  const signature = b64u(sign('sha256', Buffer.from(`${protectedHeader}.${body}`), { key: key.privateKey, dsaEncoding: 'ieee-p1363' }));
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/jose+json' },
    body: JSON.stringify({ protected: protectedHeader, payload: body, signature }),
  });
  const n = res.headers.get('replay-nonce');
  if (n) nonces.push(n);
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const label = `${res.status}${json?.type ? ` ${String(json.type).split(/[:/]/).pop()}` : ''}${/per minute/.test(json?.detail ?? '') ? ' (requests per minute)' : ''}`;
  statuses.set(label, (statuses.get(label) ?? 0) + 1);
  // The request-rate limit (SIGNET_RATE_LIMIT_PER_ADDRESS): wait, and send it again.
  if (res.status === 429 && /per minute/.test(json?.detail ?? '')) {
    await new Promise((r) => setTimeout(r, 1000));
    return post(url, payload, key, kid);
  }
  return { status: res.status, json, location: res.headers.get('location') };
}

function counts(): Record<string, number> {
  const db = new Database(join(dir, 'data', 'signet.db'), { readonly: true, fileMustExist: true });
  try {
    return Object.fromEntries(TABLES.map((t) => [t, Number((db.prepare(`SELECT COUNT(*) AS n FROM "${t}"`).get() as { n: number }).n)]));
  } finally {
    db.close();
  }
}

try {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error('signet serve did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const directory = (await (await fetch(`${base}/directory`)).json()) as Record<string, string>;
  const before = counts();
  const started = Date.now();
  const end = started + SECONDS * 1000;
  let accountsRefused = false;
  let ordersRefused = false;
  let seq = 0;
  const worker = async () => {
    while (Date.now() < end && !(accountsRefused && ordersRefused)) {
      const key = newKey();
      const acct = await post(directory.newAccount!, { termsOfServiceAgreed: true }, key);
      if (acct.status !== 201) {
        accountsRefused = true;
        return;
      }
      const kid = acct.location!;
      let pending: string[] = [];
      while (Date.now() < end) {
        const w = ++seq;
        const order = await post(
          directory.newOrder!,
          { identifiers: Array.from({ length: 100 }, (_, i) => ({ type: 'dns', value: `n${i}.o${w}.${randomBytes(3).toString('hex')}.flood.test` })) },
          key,
          kid,
        );
        if (order.status === 201) {
          pending.push(...(order.json.authorizations as string[]));
          continue;
        }
        if (/per address/.test(order.json?.detail ?? '')) {
          ordersRefused = true;
          return;
        }
        if (!DEACTIVATE) break; // the account's own limit: make another account
        // Free the account's pending-authorization budget, one request per authorization.
        for (const a of pending) await post(a, { status: 'deactivated' }, key, kid);
        pending = [];
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (Date.now() - started) / 1000;
  const after = counts();
  const created = Object.fromEntries(TABLES.map((t) => [t, after[t]! - before[t]!]));
  const total = Object.entries(created)
    .filter(([t]) => t !== 'AcmeNonce')
    .reduce((s, [, n]) => s + n, 0);
  const refused = [accountsRefused ? 'new accounts' : '', ordersRefused ? 'new orders' : ''].filter(Boolean).join(' and ');
  const stopped = `${Date.now() < end ? 'stopped early' : 'time up'}${refused ? `; ${refused} refused by the per-address limits` : ''}`;
  console.log(`${seconds.toFixed(1)} s, ${CONCURRENCY} workers${DEACTIVATE ? ', deactivating' : ''}; ${stopped}`);
  console.log(`rows created: ${JSON.stringify(created)}`);
  console.log(`durable rows (without used nonces, which are purged after ~35 min): ${total} = ${Math.round(total / seconds)}/s`);
  console.log(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
