/**
 * Counters that every API process shares (Redis), so a limit holds however many processes
 * answer. Each call is atomic.
 */
export interface RateLimitStore {
  /** Adds one to a counter that lives for `windowMs` from its first hit; the count and the ms left. */
  hit(key: string, windowMs: number): Promise<{ count: number; resetMs: number }>;
  /** Adds `amount` to a counter unless that would pass `limit`; the counter expires after `ttlMs`. */
  addWithin(key: string, amount: number, limit: number, ttlMs: number): Promise<{ ok: boolean; total: number }>;
  /** Takes one of at most `limit` slots for `member` (taking it again renews it) for `leaseMs`; false when all are taken. */
  acquireSlot(key: string, member: string, limit: number, leaseMs: number): Promise<boolean>;
  releaseSlot(key: string, member: string): Promise<void>;
}

export const RATE_LIMIT_STORE = Symbol('RATE_LIMIT_STORE');
