import type { OutputFormat } from '../formats/output-formats';

export type BatchItemStatus = 'queued' | 'done' | 'failed';

/** A batch request: its items are tokens rendered on the farm; results go to its webhook in groups. */
export interface BatchDoc {
  _id: string;
  project: string;
  movie: string;
  formats: OutputFormat[];
  /** Where results go, and the sealed secret they are signed with (shown once, in the POST answer). */
  webhook?: { url: string; secret: string };
  metadata?: Record<string, unknown>;
  total: number;
  /** Items finished (done or failed), counted as they finish: says when a group is full and when the batch is. */
  finished: number;
  /** Groups sent (the last group's number). */
  groups: number;
  status: 'running' | 'completed';
  createdAt: string;
  completedAt?: string;
}

export interface BatchItemDoc {
  _id: string;
  batch: string;
  index: number;
  key: string;
  token?: string;
  status: BatchItemStatus;
  /** The first format's URL (ImageFactory's `public_url`), and every format's. */
  public_url?: string;
  urls?: Partial<Record<OutputFormat, string>>;
  error?: string;
  finishedAt?: string;
  /** The webhook group it went out in, once claimed for one (never two). */
  group?: number;
  claimedAt?: string;
  /** The group's message is recorded (the webhooks feature delivers it from there). */
  sent?: boolean;
}

/** One result as the webhook carries it. */
export type BatchOutput = { key: string; public_url: string; urls: Partial<Record<OutputFormat, string>> } | { key: string; error: string };

export function outputOf(item: BatchItemDoc): BatchOutput {
  return item.status === 'done' ? { key: item.key, public_url: item.public_url!, urls: item.urls ?? {} } : { key: item.key, error: item.error ?? 'failed' };
}
