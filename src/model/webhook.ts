/** An outbox row to write (WebhookEvent): one event, written in the transaction of the change it reports. */
export interface OutboxRecord {
  type: string;
  /** The JSON body receivers get. */
  payload: string;
  createdAt: Date;
}

/** A registered webhook (Webhook row). */
export interface WebhookRecord {
  id: string;
  url: string;
  /** JSON array of event names, sorted. */
  events: string;
  sealed: Uint8Array;
  kekId: string;
  cursor: number;
  attempts: number;
  nextAttemptAt: Date | null;
  lastError: string | null;
  leaseOwner: string | null;
  leaseUntil: Date | null;
  createdAt: Date;
  createdBy: string;
}

/** One outbox event as the dispatcher reads it. */
export interface OutboxEvent {
  id: number;
  type: string;
  payload: string;
  createdAt: Date;
}

/** A delivered event or a dead letter (WebhookDelivery row). */
export interface WebhookDeliveryRecord {
  id: string;
  webhookId: string;
  eventId: number;
  type: string;
  payload: string;
  /** delivered | dead | retrying (a dead letter an operator asked to send again) */
  status: string;
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
}
