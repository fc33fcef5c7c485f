import { Inject, Injectable, Logger } from '@nestjs/common';
import { MontageError, tooMany } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { effectiveLimits, type ProjectDoc } from '../projects/project.types';
import { RATE_LIMIT_STORE, type RateLimitStore } from './rate-limit-store';

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 3600 * 1000;
/** A render's slot is leased for this long and renewed while it runs: a crashed API's slots free themselves. */
export const SLOT_LEASE_MS = 60_000;

/** Whose budget a request spends: the API key's, or the project's for requests without one (signed URLs). */
export function budgetOf(project: string, keyId: string | undefined): string {
  return keyId ? `key:${keyId}` : `project:${project}`;
}

/** `2026-12-03` and the ms until the next UTC midnight. */
export function utcDay(now: number): { day: string; msLeft: number } {
  const day = new Date(now).toISOString().slice(0, 10);
  const next = Date.parse(`${day}T00:00:00.000Z`) + DAY_MS;
  return { day, msLeft: next - now };
}

/**
 * Rate limits and quotas per API key, shared by every API process through Redis: requests
 * per minute (POST and DELETE), renders running at once, and pixel-seconds (width × height ×
 * seconds) rendered per UTC day. Each is a project setting (0: none) with a service-wide
 * default; beyond it the answer is 429 with `Retry-After`.
 *
 * While Redis is away the limits are not enforced (the outage is logged by the queue): the
 * service keeps serving rather than refusing everyone.
 */
@Injectable()
export class RateLimitsService {
  private readonly logger = new Logger('RateLimits');
  private failingOpen = false;

  constructor(
    @Inject(RATE_LIMIT_STORE) private readonly store: RateLimitStore,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  private limits(project: ProjectDoc) {
    return effectiveLimits(project, this.config);
  }

  /** A counter call that lets the request through when Redis cannot answer. */
  private async guarded<T>(call: () => Promise<T>, fallback: T): Promise<T> {
    try {
      const value = await call();
      if (this.failingOpen) this.logger.log('rate limits are enforced again');
      this.failingOpen = false;
      return value;
    } catch (err) {
      if (err instanceof MontageError && err.kind === 'too_many') throw err;
      if (!this.failingOpen) this.logger.warn(`rate limits are not enforced while Redis cannot answer (${(err as Error).message})`);
      this.failingOpen = true;
      return fallback;
    }
  }

  /** One authenticated request: 429 beyond the key's requests per minute. */
  async countRequest(project: ProjectDoc, keyId: string | undefined): Promise<void> {
    const limit = this.limits(project).requestsPerMinute;
    if (!limit) return;
    const window = Math.floor(Date.now() / MINUTE_MS);
    const { count, resetMs } = await this.guarded(() => this.store.hit(`req:${budgetOf(project._id, keyId)}:${window}`, MINUTE_MS), { count: 0, resetMs: 0 });
    if (count > limit) {
      throw tooMany(`this API key made more than ${limit} requests this minute; the limit of project "${project._id}" is ${limit} per minute`, resetMs / 1000, [
        { field: 'requestsPerMinute', message: `limit ${limit}` },
      ]);
    }
  }

  /**
   * A render about to start: a running slot of the key (429 when all are taken) and its
   * pixel-seconds from today's quota. Resolves with `release`, to call when the render ends.
   */
  async admitRender(project: ProjectDoc, keyId: string | undefined, renderKey: string, pixelSeconds: number): Promise<() => void> {
    const limits = this.limits(project);
    const budget = budgetOf(project._id, keyId);
    const slotKey = `run:${budget}`;
    let renew: NodeJS.Timeout | undefined;
    if (limits.rendersRunning) {
      const got = await this.guarded(() => this.store.acquireSlot(slotKey, renderKey, limits.rendersRunning, SLOT_LEASE_MS), true);
      if (!got) {
        throw tooMany(`this API key has ${limits.rendersRunning} renders running, the most project "${project._id}" allows at once; try again when one is done`, 5, [
          { field: 'rendersRunning', message: `limit ${limits.rendersRunning}` },
        ]);
      }
      renew = setInterval(() => void this.guarded(() => this.store.acquireSlot(slotKey, renderKey, limits.rendersRunning, SLOT_LEASE_MS), true), SLOT_LEASE_MS / 3);
      renew.unref();
    }
    const release = () => {
      if (renew) clearInterval(renew);
      if (limits.rendersRunning) void this.store.releaseSlot(slotKey, renderKey).catch(() => undefined);
    };
    if (limits.pixelSecondsPerDay) {
      const { day, msLeft } = utcDay(Date.now());
      const { ok } = await this.guarded(() => this.store.addWithin(`px:${budget}:${day}`, pixelSeconds, limits.pixelSecondsPerDay, DAY_MS * 2), { ok: true, total: 0 });
      if (!ok) {
        release();
        throw this.quotaExceeded(project, limits.pixelSecondsPerDay, msLeft);
      }
    }
    return release;
  }

  private quotaExceeded(project: ProjectDoc, limit: number, msLeft: number): MontageError {
    return tooMany(
      `this API key has used its daily quota of ${limit} pixel-seconds (width × height × seconds) of project "${project._id}"; it renews at 00:00 UTC`,
      msLeft / 1000,
      [{ field: 'pixelSecondsPerDay', message: `limit ${limit}` }],
    );
  }
}
