/**
 * Which state changes become webhook events, and the outbox rows they are written as.
 *
 * Every change Signet makes records an audit event in its own transaction (ca/audit.ts), so
 * the outbox is filled there: appendAudits and auditBatch turn the audit rows of a change into
 * outbox rows (outboxOf) and the audit log writes both in one transaction. That covers the
 * issuance group commit (one extra multi-row insert per batch), revocation, CA changes and CRL
 * publication without touching each of them, and no event can commit without its change or
 * the change without its event. Nothing here fans out to webhooks: the dispatcher
 * (ca/webhooks.ts) reads the outbox after the commit, off the hot path.
 */
import { randomUUID } from 'node:crypto';
import type { OutboxRecord } from '../model/webhook.js';
import type { AuditInput, AuditRow } from './audit.js';
import { appendAudit } from './audit.js';
import type { Database, Tx } from '../storage/database.js';

/** CA changes that are events (`ca.*`); a CA key's every use (ca.key.used) is not one. */
export const CA_EVENTS = [
  'ca.created',
  'ca.imported',
  'ca.renewed',
  'ca.revoked',
  'ca.certificate.revoked',
  'ca.status.changed',
  'ca.issuance.moved',
  'ca.cross-certified',
  'ca.key.moved',
  'ca.key.offline',
] as const;

/** Every event a webhook may subscribe to; `ca.*` stands for all CA_EVENTS. */
export const WEBHOOK_EVENTS = ['certificate.issued', 'certificate.revoked', 'certificate.at_risk', 'crl.published', 'ca.*', ...CA_EVENTS] as const;
export type WebhookEventName = (typeof WEBHOOK_EVENTS)[number];

/** The audit actions that are events, and the event each one is. */
const EVENT_OF: ReadonlyMap<string, string> = new Map<string, string>([
  ['certificate.issued', 'certificate.issued'],
  ['certificate.renewed', 'certificate.issued'],
  ['certificate.rekeyed', 'certificate.issued'],
  ['certificate.revoked', 'certificate.revoked'],
  ['certificate.held', 'certificate.revoked'],
  // A hold released is the same status stream: a receiver that saw the hold must see it end.
  ['certificate.unheld', 'certificate.revoked'],
  ['certificate.at_risk', 'certificate.at_risk'],
  ['crl.signed', 'crl.published'],
  ...CA_EVENTS.map((e) => [e, e] as [string, string]),
]);

/** The certificate's status a certificate.revoked event reports, by audit action (default: revoked). */
const STATUS_AFTER: ReadonlyMap<string, string> = new Map([
  ['certificate.held', 'hold'],
  ['certificate.unheld', 'good'],
]);

/** Whether a webhook subscribed to `events` gets an event of `type`. */
export function subscribed(events: readonly string[], type: string): boolean {
  return events.includes(type) || (type.startsWith('ca.') && events.includes('ca.*'));
}

/** Details never sent to receivers (a PKCS#11 URI names the operator's token layout). */
const PRIVATE_DETAILS = new Set(['keyUri']);

/** The outbox rows for audit rows just chained: one per successful change that is an event. */
export function outboxOf(rows: readonly AuditRow[]): OutboxRecord[] {
  const out: OutboxRecord[] = [];
  for (const r of rows) {
    const type = EVENT_OF.get(r.action);
    if (!type || r.outcome !== 'success') continue;
    const details = r.details ? (JSON.parse(r.details) as Record<string, unknown>) : {};
    for (const k of PRIVATE_DETAILS) delete details[k];
    const subject = type.startsWith('certificate.') ? { serial: r.target } : type.startsWith('crl.') ? { caId: r.target } : { id: r.target };
    const data = {
      ...subject,
      ...(r.action !== type ? { action: r.action } : {}),
      ...(type === 'certificate.revoked' ? { status: STATUS_AFTER.get(r.action) ?? 'revoked' } : {}),
      ...details,
      actor: r.actor,
    };
    const payload = JSON.stringify({ id: `evt_${randomUUID()}`, type, time: r.time.toISOString(), auditSeq: r.seq, data });
    out.push({ type, payload, createdAt: r.time });
  }
  return out;
}

/** Why a certificate is at risk, as the detector that found it says (e.g. a weak key, a compromised CA, a name no longer controlled). */
export interface AtRisk {
  serial: string;
  caId: string;
  /** A short machine-readable reason, e.g. `weak-key`. */
  reason: string;
  /** Free-form facts for the receiver (JSON-serialisable). */
  details?: Record<string, unknown>;
  actor?: string;
}

/**
 * Records that a certificate is at risk: an audit event `certificate.at_risk` and, in the same
 * transaction, a `certificate.at_risk` webhook event. Pass `tx` to commit it with the detector's
 * own change; without one it is a transaction of its own.
 */
export async function emitCertificateAtRisk(db: Database, risk: AtRisk, tx?: Tx): Promise<void> {
  const input: AuditInput = {
    actor: risk.actor ?? 'system',
    action: 'certificate.at_risk',
    target: risk.serial,
    details: { caId: risk.caId, reason: risk.reason, ...(risk.details ?? {}) },
  };
  if (tx) await appendAudit(tx, input);
  else await db.transaction((t) => appendAudit(t, input));
}
