import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { isPublicAddress } from '../assets/url-policy';
import { badInput } from '../common/errors';
import { unsafeCharacter } from '../common/json-policy';
import { WEBHOOK_EVENT_PATTERNS, WEBHOOK_EVENT_TYPES, type WebhookAttempt, type WebhookEventType } from './webhook.types';

/** Pure rules of webhook delivery: what matches, when to try again, what an answer means. */

export const MAX_WEBHOOK_URL_LENGTH = 2048;
/** Attempts kept in a message's log. */
export const KEPT_ATTEMPTS = 20;
/** A waiting message looks again at least this often, and at most this rarely, while an earlier sibling is pending. */
export const GATE_MIN_MS = 250;
export const GATE_MAX_MS = 30_000;
/** A Retry-After shorter than this is taken as this (a receiver cannot make us hammer it). */
export const MIN_RETRY_AFTER_MS = 1000;

const VALID_EVENTS: readonly string[] = [...WEBHOOK_EVENT_TYPES, ...WEBHOOK_EVENT_PATTERNS];

export function isWebhookEventType(value: unknown): value is WebhookEventType {
  return typeof value === 'string' && (WEBHOOK_EVENT_TYPES as readonly string[]).includes(value);
}

/** Whether an endpoint subscribed with `patterns` gets events of `type`. */
export function matchesEvent(patterns: readonly string[], type: string): boolean {
  return patterns.some((p) => p === '*' || p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))));
}

/** The subscription list, checked: each an event type or a pattern; duplicates dropped. Throws 400 listing the valid names. */
export function parseEvents(raw: unknown, field = 'events'): string[] {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 32) {
    throw badInput(`${field} must be a list of 1 to 32 event types or patterns: ${VALID_EVENTS.join(', ')}`, [{ field, message: 'not a list of event types' }]);
  }
  const unknown = raw.filter((e) => typeof e !== 'string' || !VALID_EVENTS.includes(e));
  if (unknown.length > 0) {
    const shown = unknown.slice(0, 5).map((e) => (typeof e === 'string' ? `"${e.length > 40 ? `${e.slice(0, 40)}…` : e}"` : typeof e));
    throw badInput(`unknown event type${unknown.length > 1 ? 's' : ''} ${shown.join(', ')}; the valid ones are ${VALID_EVENTS.join(', ')}`, [
      { field, message: `valid: ${VALID_EVENTS.join(', ')}` },
    ]);
  }
  return [...new Set(raw as string[])];
}

/**
 * Why a webhook URL may not be registered, or undefined: absolute http(s), no credentials, at
 * most 2048 characters, no control characters; an IP literal (or localhost) that is not public
 * unless private addresses are allowed. Host names are resolved separately (DNS may change:
 * every send checks again).
 */
export function webhookUrlProblem(raw: string, allowPrivateAddresses: boolean): string | undefined {
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) return `longer than ${MAX_WEBHOOK_URL_LENGTH} characters`;
  const unsafe = unsafeCharacter(raw);
  if (unsafe) return `contains ${unsafe}`;
  if (/\s/.test(raw)) return 'contains white space';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not a valid absolute URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `only http and https URLs are allowed, not ${url.protocol.replace(/:$/, '')}`;
  if (url.username !== '' || url.password !== '') return 'URLs with credentials (user:password@) are not allowed';
  if (!url.hostname) return 'no host';
  if (url.href.length > MAX_WEBHOOK_URL_LENGTH) return `longer than ${MAX_WEBHOOK_URL_LENGTH} characters`;
  if (!allowPrivateAddresses) {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    if (isIP(host) && !isPublicAddress(host)) return `${host} is a private, loopback or link-local address`;
    if (host === 'localhost' || host.endsWith('.localhost')) return `${host} is this machine`;
  }
  return undefined;
}

/** 2xx: delivered. 410: the receiver wants no more (the endpoint is disabled). Anything else, 3xx included (never followed): a failed attempt. */
export function classifyResponse(status: number): 'delivered' | 'gone' | 'failed' {
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 410) return 'gone';
  return 'failed';
}

/** `Retry-After` in ms from `nowMs`: delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | string[] | undefined, nowMs: number): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) return undefined;
  if (/^\d{1,10}$/.test(value)) return Number(value) * 1000;
  // An HTTP date names its weekday (IMF-fixdate, RFC 850, asctime): a bare number is not a date.
  if (!/[a-z]/i.test(value)) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/**
 * The wait before the next attempt after `attemptsMade` attempts (1 = the first failed), or
 * undefined when the schedule is spent: the schedule's step (seconds after the first attempt,
 * Standard Webhooks' by default) ±20 % jitter; or the receiver's Retry-After when it gave one,
 * capped at the schedule's largest step.
 */
export function retryDelayMs(schedule: readonly number[], attemptsMade: number, retryAfterMs?: number, random: () => number = Math.random): number | undefined {
  if (attemptsMade < 1 || attemptsMade > schedule.length) return undefined;
  const largest = Math.max(...schedule) * 1000;
  if (retryAfterMs !== undefined) return Math.min(Math.max(retryAfterMs, MIN_RETRY_AFTER_MS), Math.max(largest, MIN_RETRY_AFTER_MS));
  const step = schedule[attemptsMade - 1] * 1000;
  return Math.round(step * (0.8 + 0.4 * random()));
}

/**
 * How long a message waits behind a pending earlier sibling: a short look again while the
 * sibling is due or being sent (so it goes right after it), otherwise until just after the
 * sibling's next attempt (capped, so a replayed or re-enabled sibling is noticed soon).
 */
export function gateDelayMs(sibling: { nextAttemptAt?: string; leaseUntil?: number }, nowMs: number): number {
  const due = sibling.nextAttemptAt ? Date.parse(sibling.nextAttemptAt) : nowMs;
  if ((sibling.leaseUntil ?? 0) > nowMs || !(due > nowMs)) return GATE_MIN_MS;
  return Math.min(GATE_MAX_MS, Math.max(GATE_MIN_MS, due - nowMs + 100));
}

/** `msg_` + sha256 of the parts, base64url: the same event to the same endpoint is one message, whichever process says it. */
export function messageIdFor(parts: readonly string[]): string {
  return `msg_${createHash('sha256').update(parts.join('\n')).digest('base64url')}`;
}

let lastSeq = 0;
/** Creation order within this process (ms × 1000, then a counter): never goes back, even if the clock does. */
export function nextSeq(nowMs = Date.now()): number {
  lastSeq = Math.max(lastSeq + 1, nowMs * 1000);
  return lastSeq;
}

/** The attempt log with `attempt` added, the oldest dropped beyond KEPT_ATTEMPTS. */
export function withAttempt(attempts: readonly WebhookAttempt[], attempt: WebhookAttempt): WebhookAttempt[] {
  return [...attempts, attempt].slice(-KEPT_ATTEMPTS);
}

/** A Standard Webhooks body: `{"type", "timestamp", "data"}`, the string that is signed and stored. */
export function messageBody(type: WebhookEventType, data: Record<string, unknown>, at: Date): string {
  return JSON.stringify({ type, timestamp: at.toISOString(), data });
}
