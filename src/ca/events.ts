import { EventEmitter } from 'node:events';

/**
 * In-process notifications after a commit: a status change refreshes the OCSP cache at once
 * and schedules a CRL. Other replicas learn of it by polling (see OcspResponder.pollChanges).
 */
export interface StatusChange { caId: string; serial: string }

export interface Issued { caId: string; profile: string }
export interface Revoked { caId: string; reason: string }

/** Also, for metrics: every committed issuance and revocation. */
export class CaEvents extends EventEmitter<{ statusChanged: [StatusChange]; caChanged: [string]; certificateIssued: [Issued]; certificateRevoked: [Revoked] }> {}
