/** Every event type a webhook endpoint can subscribe to (Standard Webhooks' dotted names). */
export const WEBHOOK_EVENT_TYPES = [
  'render.pending',
  'render.processing',
  'render.completed',
  'render.failed',
  'upload.started',
  'upload.completed',
  'upload.failed',
  'batch.output',
  'batch.completed',
  // Product renders (VNTANA's names): stills, and the turntable video.
  'renders.pending',
  'renders.processing',
  'renders.completed',
  'renders.failed',
  'turntable.pending',
  'turntable.processing',
  'turntable.completed',
  'turntable.failed',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Patterns an endpoint may subscribe with besides exact types: a whole family, or everything. */
export const WEBHOOK_EVENT_PATTERNS = ['render.*', 'upload.*', 'batch.*', 'renders.*', 'turntable.*', '*'] as const;

/** A registered receiver of a project's events. */
export interface WebhookEndpointDoc {
  /** `ep_<random>`. */
  _id: string;
  project: string;
  url: string;
  /** Exact types or patterns (see WEBHOOK_EVENT_PATTERNS). */
  events: string[];
  description?: string;
  /** `whsec_…`, sealed with the SecretBox. */
  secret: string;
  /** After a rotation, the previous secret (sealed) also signs until `previousSecretUntil`, so receivers can switch over. */
  previousSecret?: string;
  previousSecretUntil?: string;
  /** Set when the receiver answered 410 Gone (or through PATCH): nothing is sent until PATCH re-enables it. */
  disabled?: { at: string; reason: string };
  createdAt: string;
  updatedAt: string;
}

export type MessageStatus = 'pending' | 'delivered' | 'failed';

/** One try at sending a message. */
export interface WebhookAttempt {
  /** When it was sent (ISO). */
  at: string;
  /** The receiver's HTTP status, when it answered. */
  status?: number;
  /** Why it got no answer (timeout, refused, …), or why an answer counts as a failure. */
  error?: string;
  /** How long it took. */
  ms: number;
}

/** One message to one endpoint (or one direct target): its exact body, and its delivery state. */
export interface WebhookMessageDoc {
  /** `msg_<sha256 of endpoint, type and event id, base64url>`: the `webhook-id` header, stable across retries. */
  _id: string;
  project: string;
  /** The endpoint's id, or 'direct' for a target that is not a registered endpoint. */
  endpoint: string;
  /** Direct targets only: where it goes, and its secret (sealed). */
  url?: string;
  secret?: string;
  type: WebhookEventType;
  /** The exact string sent (and signed). */
  body: string;
  /** Messages of one (endpoint, orderKey) are delivered in `seq` order. */
  orderKey?: string;
  /** Creation order (ms since the epoch × 1000 + a counter). */
  seq: number;
  status: MessageStatus;
  /** The last 20 tries. */
  attempts: WebhookAttempt[];
  /** Tries of this round (a replay starts a new round): the retry schedule's position. */
  attemptCount: number;
  /** When the next try is due (pending messages). */
  nextAttemptAt?: string;
  /** Why it failed for good, or the last failure. */
  lastError?: string;
  deliveredAt?: string;
  /** How many times it was replayed (replay jobs are `<id>-replay-<n>`). */
  replays: number;
  /** A worker sending it now holds it until this time (ms since the epoch); 0 when free. */
  leaseUntil: number;
  /** The last time a job looked at it (a message nobody looks at is re-queued by the sweep). */
  touchedAt: string;
  createdAt: string;
}

/** What the API shows of an endpoint: never its secret. */
export interface WebhookEndpointView {
  id: string;
  url: string;
  events: string[];
  description?: string;
  disabled?: { at: string; reason: string };
  createdAt: string;
  updatedAt: string;
}

/** What the delivery log shows of a message. */
export interface WebhookMessageView {
  id: string;
  type: WebhookEventType;
  status: MessageStatus;
  createdAt: string;
  attempts: WebhookAttempt[];
  attemptCount: number;
  nextAttemptAt?: string;
  deliveredAt?: string;
  lastError?: string;
  replays: number;
  orderKey?: string;
}

export const ENDPOINTS_COLLECTION = 'webhook_endpoints';
export const MESSAGES_COLLECTION = 'webhook_messages';
/** Messages that are not registered endpoints' (a batch's webhook_url). */
export const DIRECT = 'direct';
