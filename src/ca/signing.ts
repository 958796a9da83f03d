/**
 * The one way Signet signs a certificate, after Boulder's issuance.Prepare/Issue: every
 * certificate (leaf, root and intermediate CA, OCSP responder; the HTTPS identity is a leaf)
 * is prepared — its TBS linted under the rule list of its kind (pki/lint.ts) — and only a
 * prepared certificate without findings is signed, once.
 *
 *   const prepared = prepareCertificate(tbs, { kind: 'leaf', expect }, signer);
 *   if (prepared.findings.length) …record the bug, sign nothing…
 *   const der = await signPrepared(prepared);
 *
 * The token binds the TBS to the signer and the lint that passed it: the signed bytes are the
 * linted bytes, and a token cannot be signed twice (a second signature over the same serial
 * would be two certificates with one serial).
 */
import { SignetError } from '../errors.js';
import { algorithmDer, signTbs } from '../pki/certificate.js';
import type { Signer } from '../pki/keys.js';
import { lintCaTbs, lintLeafTbs, lintResponderTbs, type CaLintExpectations, type LintExpectations, type ResponderLintExpectations } from '../pki/lint.js';

/** The kind of certificate, and what its lint expects of it. */
export type CertificateLint =
  | { kind: 'leaf'; expect: LintExpectations }
  | { kind: 'ca'; expect: CaLintExpectations }
  | { kind: 'ocsp-responder'; expect: ResponderLintExpectations };

/** A linted TBS, bound to its signer: what signPrepared accepts, once. */
export class PreparedCertificate {
  #signed = false;
  /** @internal: made by prepareCertificate only. */
  constructor(
    readonly kind: CertificateLint['kind'],
    readonly tbs: Buffer,
    readonly findings: readonly string[],
    readonly signer: Signer,
    readonly signatureAlgorithmDer: Buffer,
  ) {}

  /** Marks the token used; false when it already was. */
  take(): boolean {
    if (this.#signed) return false;
    this.#signed = true;
    return true;
  }
}

const KIND_NAMES: Record<CertificateLint['kind'], string> = { leaf: 'certificate', ca: 'CA certificate', 'ocsp-responder': 'OCSP responder certificate' };

/**
 * Lints `tbs` under its kind's rules. The signature algorithm the lint expects is the signer's:
 * one a caller computed for another key is a bug, refused here rather than signed.
 */
export function prepareCertificate(tbs: Buffer, lint: CertificateLint, signer: Signer): PreparedCertificate {
  const alg = lint.expect.signatureAlgorithmDer;
  if (!alg.equals(signerAlgorithmDer(signer)))
    throw new SignetError(
      'internal',
      `the ${KIND_NAMES[lint.kind]} was prepared for another signing algorithm than its signer's (a Signet bug); nothing was signed`,
    );
  const findings = lint.kind === 'leaf' ? lintLeafTbs(tbs, lint.expect) : lint.kind === 'ca' ? lintCaTbs(tbs, lint.expect) : lintResponderTbs(tbs, lint.expect);
  return new PreparedCertificate(lint.kind, tbs, findings, signer, alg);
}

/** Signs a prepared certificate: only one without findings, and only once. */
export async function signPrepared(p: PreparedCertificate): Promise<Buffer> {
  if (p.findings.length) throw lintFailure(p.kind, p.findings);
  if (!p.take()) throw new SignetError('internal', `a prepared ${KIND_NAMES[p.kind]} is signed once (a Signet bug); it was not signed again`);
  return signTbs(p.tbs, p.signer, p.signatureAlgorithmDer);
}

/** The refusal for a TBS with findings: a Signet bug, never a request's fault. */
export function lintFailure(kind: CertificateLint['kind'], findings: readonly string[], serial?: string): SignetError {
  const which = serial ? ` (serial ${serial})` : '';
  return new SignetError(
    'lint-failure',
    `the ${KIND_NAMES[kind]}${which} failed pre-issuance lint and was not signed (this is a Signet bug): ${findings.join('; ')}`,
  );
}

/** DER of a signer's AlgorithmIdentifier, once per signer (the leaf path compares it per issuance). */
const algorithmDers = new WeakMap<Signer, Buffer>();
export function signerAlgorithmDer(signer: Signer): Buffer {
  let der = algorithmDers.get(signer);
  if (!der) {
    der = algorithmDer(signer);
    algorithmDers.set(signer, der);
  }
  return der;
}
