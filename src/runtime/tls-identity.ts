/**
 * The HTTPS listener's own certificate: issued by Signet to itself for SIGNET_TLS_NAMES with a
 * key that only ever lives in this process's memory, and re-issued at two-thirds of its life
 * (the TLS context is swapped in place, connections keep going).
 */
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { Issuance } from '../ca/issuance.js';
import { buildCsr, parseSanArg } from '../pki/csr-builder.js';
import { generateKey } from '../pki/keys.js';
import { SignetError, isSignetError } from '../errors.js';

export class TlsIdentity {
  private timer?: NodeJS.Timeout;
  renewAt = 0;

  constructor(
    private readonly issuance: Issuance,
    private readonly names: string[],
    private readonly log: Logger,
  ) {}

  async issue(): Promise<SecureContextOptions> {
    const { privateKey } = generateKey('ecdsa-p256');
    const sans = this.names.map(parseSanArg);
    const csr = await buildCsr(privateKey, undefined, sans);
    let cert;
    try {
      cert = await this.issuance.issue({ csr, profile: 'server', validityDays: 30 }, { principal: { kind: 'system', actor: 'system:tls' } });
    } catch (e) {
      // A server profile narrowed by SIGNET_PROFILES_FILE (dnsSuffixes, ipRanges, validity) can refuse
      // Signet's own names: say which setting to change instead of a bare policy message.
      if (isSignetError(e) && e.status < 500) {
        throw new SignetError(
          'configuration',
          `SIGNET_TLS_NAMES (${this.names.join(',')}): the HTTPS certificate is issued under profile server, which refuses it: ${e.detail}; set SIGNET_TLS_NAMES to names the server profile allows, or widen the profile`,
          { cause: e },
        );
      }
      throw e;
    }
    const life = cert.notAfter.getTime() - cert.notBefore.getTime();
    this.renewAt = cert.notBefore.getTime() + (life * 2) / 3;
    this.log.info({ serial: cert.serial, names: this.names, notAfter: cert.notAfter }, 'HTTPS certificate issued');
    return { key: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, cert: cert.certificate + cert.chain };
  }

  /** Checks hourly; calls apply() with a fresh context when renewal is due. */
  watch(apply: (ctx: SecureContextOptions) => void): void {
    this.timer = setInterval(() => {
      if (Date.now() < this.renewAt) return;
      this.issue().then(apply, (e: unknown) => this.log.error({ err: e }, 'HTTPS certificate renewal failed; will retry'));
    }, 3_600_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
