/**
 * Micro-benchmark (issue #17): where an EST simpleenroll's time goes next to a REST issuance, in
 * process (no HTTP, no TLS). Opens a fresh SQLite Signet, makes one enrollment credential
 * (1,000,000 uses), then times: authenticateEnrollment; Issuance.issue at concurrency C (what
 * REST does after authentication) and EstService.simpleenroll at concurrency C (the same issue,
 * whose commit also spends the credential's use): wall time per certificate and process CPU
 * per certificate.
 *
 *   node --import tsx bench/micro/enroll.ts [certificates] [concurrency]
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
import { derToPem } from '../../src/pki/pem.js';
import { ownKey } from '../../src/pki/keys.js';
import { authenticateEnrollment, createEnrollmentCredential } from '../../src/ca/enrollment-credentials.js';
import { EstService } from '../../src/est/service.js';

const N = Number(process.argv[2] ?? 1000);
const C = Number(process.argv[3] ?? 16);
const dir = mkdtempSync(join(tmpdir(), 'signet-micro-enroll-'));
const config = loadConfig({ SIGNET_DATA_DIR: dir, SIGNET_LOG_LEVEL: 'warn' });
const log = pino({ level: 'warn' });
const ctx = await openSignet(config, log);
await bootstrapIfEmpty(ctx, config);
const { issuance } = createServices(ctx, config);
const est = new EstService(ctx, issuance);

const ders = await Promise.all(
  Array.from({ length: 500 }, async (_, i) => {
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const name = `host${i}.bench.test`;
    return buildCsr(ownKey(k), name, [{ type: 'dns', value: name }]);
  }),
);
const pems = ders.map((d) => derToPem(d, 'CERTIFICATE REQUEST'));
const made = await createEnrollmentCredential(ctx, { protocol: 'est', profile: 'server', uses: 1_000_000, expiresAt: null }, { actor: 'bench' });
const auth = () => authenticateEnrollment(ctx, made.secret, { protocol: 'est', id: made.id });
const who = await auth();
const system = { principal: { kind: 'system', actor: 'bench' } } as const;

const measure = async (label: string, n: number, conc: number, f: (i: number) => Promise<unknown>) => {
  for (let i = 0; i < Math.min(100, n); i++) await f(i); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < n) await f(next++);
    }),
  );
  const wallUs = Number(process.hrtime.bigint() - t0) / 1000 / n;
  const cpu = process.cpuUsage(cpu0);
  const cpuUs = (cpu.user + cpu.system) / n;
  console.log(
    `${label.padEnd(52)} c${String(conc).padEnd(3)} ${wallUs.toFixed(0).padStart(7)} µs wall  ${cpuUs.toFixed(0).padStart(7)} µs CPU  ${(1e6 / wallUs).toFixed(0).padStart(6)}/s`,
  );
};

console.log(`node ${process.version}; ${N} operations per line; SQLite at ${dir}`);
await measure('authenticateEnrollment', N, 1, () => auth());
await measure('Issuance.issue (REST after auth)', N, C, (i) => issuance.issue({ csr: pems[i % pems.length]!, profile: 'server' }, system));
await measure('EstService.simpleenroll (issue, use spent in its commit)', N, C, (i) => est.simpleenroll(ders[i % ders.length]!, who, '127.0.0.1'));
await measure('Issuance.issue (REST after auth), again', N, C, (i) => issuance.issue({ csr: pems[i % pems.length]!, profile: 'server' }, system));
await measure('EstService.simpleenroll, again', N, C, (i) => est.simpleenroll(ders[i % ders.length]!, who, '127.0.0.1'));

await ctx.db.close();
rmSync(dir, { recursive: true, force: true });
