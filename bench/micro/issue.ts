/**
 * Micro-benchmark: where one issuance's CPU goes, in process (no HTTP). Opens a fresh SQLite
 * Signet, then times: parseCsr; policy+template+lint+sign (Issuance.issue with the commit);
 * and the whole issue() at concurrency 1 and 64 (group commit; wall time and process CPU); and authenticate(), the API-token
 * check every authenticated request runs first (hash or MAC, the prepared lookup, the grant check).
 *
 *   node --import tsx bench/micro/issue.ts [iterations]
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { bootstrapIfEmpty, openSignet } from '../../src/runtime/open.js';
import { createServices } from '../../src/runtime/services.js';
import { buildCsr } from '../../src/pki/csr-builder.js';
import { parseCsr } from '../../src/pki/csr.js';
import { derToPem } from '../../src/pki/pem.js';
import { ownKey } from '../../src/pki/keys.js';
import { authenticate, createToken } from '../../src/ca/tokens.js';

const N = Number(process.argv[2] ?? 3000);
const dir = mkdtempSync(join(tmpdir(), 'signet-micro-issue-'));
const config = loadConfig({ SIGNET_DATA_DIR: dir, SIGNET_LOG_LEVEL: 'warn' });
const log = pino({ level: 'warn' });
const ctx = await openSignet(config, log);
await bootstrapIfEmpty(ctx, config);
const { issuance } = createServices(ctx, config);

const csrs = await Promise.all(
  Array.from({ length: 500 }, async (_, i) => {
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const name = `host${i}.bench.test`;
    return derToPem(await buildCsr(ownKey(k), name, [{ type: 'dns', value: name }]), 'CERTIFICATE REQUEST');
  }),
);
const who = { principal: { kind: 'system', actor: 'bench' } } as const;

const time = async (label: string, n: number, f: (i: number) => unknown) => {
  for (let i = 0; i < 200; i++) await f(i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await f(i);
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
  console.log(`${label.padEnd(44)} ${us.toFixed(1).padStart(8)} µs`);
};
const timeConcurrent = async (label: string, n: number, conc: number) => {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < n) {
        const i = next++;
        await issuance.issue({ csr: csrs[i % csrs.length]!, profile: 'server' }, who);
      }
    }),
  );
  const us = Number(process.hrtime.bigint() - t0) / 1000 / n;
  const cpu = process.cpuUsage(cpu0);
  // CPU of the whole process (main thread, the WAL checkpointer's thread, libuv's pool) per certificate.
  console.log(`${label.padEnd(44)} ${us.toFixed(1).padStart(8)} µs  (${Math.round(1e6 / us)}/s; CPU ${((cpu.user + cpu.system) / n).toFixed(0)} µs)`);
};

const { token } = await createToken(ctx, { name: 'bench', scopes: ['issue'] }, 'bench');
await time('authenticate() (API token, hot path)', N * 10, () => authenticate(ctx, token));
await time('parseCsr (PEM, P-256)', N, (i) => parseCsr(csrs[i % csrs.length]!));
await time('issue() sequential (one commit each)', Math.min(N, 1000), (i) => issuance.issue({ csr: csrs[i % csrs.length]!, profile: 'server' }, who));
await timeConcurrent('issue() at concurrency 64 (group commit)', N, 64);
await ctx.db.close();
rmSync(dir, { recursive: true, force: true });
