import { Logger } from '@nestjs/common';
import IORedis from 'ioredis';
import { unavailable } from '../common/errors';
import type { RateLimitStore } from '../limits/rate-limit-store';
import { redisOptions } from './job-queue/job-queue.repository';

const PREFIX = 'montage:limits:';

/** INCR, and the window's expiry set by its first hit. Returns {count, pttl}. */
const HIT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}`;

/** INCRBY unless the total would pass the limit. Returns {ok, total}. */
const ADD_WITHIN = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if current + amount > tonumber(ARGV[2]) then return {0, current} end
local total = redis.call('INCRBY', KEYS[1], amount)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, total}`;

/** A sorted set of leases scored by expiry: expired ones are dropped, a member renews its own. */
const ACQUIRE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

/** Rate-limit counters on Redis: the same Redis as the job queue, keys under `montage:limits:`. */
export class RedisRateLimitStore implements RateLimitStore {
  private readonly redis: IORedis;
  private readonly logger = new Logger('RateLimits');

  constructor(url: string) {
    // Fails at once while Redis is away (the service then lets the request through).
    this.redis = new IORedis({ ...redisOptions(url), enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    this.redis.on('error', () => undefined); // the queue's own connection logs outages
  }

  private async call<T>(script: string, keys: string[], args: Array<string | number>): Promise<T> {
    if (this.redis.status !== 'ready') throw unavailable('Redis is unreachable');
    let timer: NodeJS.Timeout | undefined;
    try {
      return (await Promise.race([
        this.redis.eval(script, keys.length, ...keys, ...args.map(String)),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(unavailable('Redis did not answer')), 2000))),
      ])) as T;
    } finally {
      clearTimeout(timer);
    }
  }

  async hit(key: string, windowMs: number): Promise<{ count: number; resetMs: number }> {
    const [count, ttl] = await this.call<[number, number]>(HIT, [PREFIX + key], [windowMs]);
    return { count, resetMs: ttl };
  }

  async addWithin(key: string, amount: number, limit: number, ttlMs: number): Promise<{ ok: boolean; total: number }> {
    const [ok, total] = await this.call<[number, number]>(ADD_WITHIN, [PREFIX + key], [Math.ceil(amount), Math.floor(limit), ttlMs]);
    return { ok: ok === 1, total };
  }

  async acquireSlot(key: string, member: string, limit: number, leaseMs: number): Promise<boolean> {
    const now = Date.now();
    return (await this.call<number>(ACQUIRE, [PREFIX + key], [member, limit, now, now + leaseMs, leaseMs * 2])) === 1;
  }

  async releaseSlot(key: string, member: string): Promise<void> {
    if (this.redis.status !== 'ready') return; // the lease runs out by itself
    await this.redis.zrem(PREFIX + key, member).catch((err: Error) => this.logger.warn(`slot not released: ${err.message}`));
  }

  close(): void {
    this.redis.disconnect();
  }
}
