import * as path from 'node:path';
import { badInput } from '../common/errors';
import { parseStorageUrl, type StorageLocation } from '../storage/storage-location';

/** Every setting Montage reads from the environment, typed and validated once at start-up. */
export interface MontageConfig {
  port: number;
  /** Root of persistent state: asset cache, rasters, outputs. */
  dataDir: string;
  templatesDir: string;
  ffmpegPath: string;
  ffprobePath: string;
  media: {
    /** Allow URLs that resolve to private, loopback or link-local addresses (tests, intranets). */
    allowPrivateAddresses: boolean;
    maxBytes: number;
    timeoutMs: number;
    maxRedirects: number;
  };
  /** Threads ffmpeg may use per render; 0 lets ffmpeg decide. */
  ffmpegThreads: number;
  /** Base of the URLs the API hands out (`https://videos.example.com`); default: the request's host. */
  publicUrl?: string;
  /** Largest JSON request body, in bytes. */
  maxBodyBytes: number;
  /** BullMQ's Redis (`redis://…` or `unix:///path/redis.sock`); unset: the API starts a private redis-server. */
  redisUrl?: string;
  /** Routing keys a render node takes work from (queues `render.<key>`). */
  routingKeys: string[];
  /** Segments a render node renders at once. */
  concurrency: number;
  /** How long a node's hold on a segment lasts without renewal: a dead node's work is freed after this. */
  segmentLockMs: number;
  /** How often nodes look for segments whose holder died. */
  stalledCheckMs: number;
  /**
   * Pieces per `parallel` lane after the first segment: 1 is fastest overall; more make a
   * distributed stream start playing sooner (each piece costs about 0.3 s of set-up).
   */
  segmentsPerLane: number;
  /** Run a render node inside the API process (the embedded default). */
  embeddedRenderNode: boolean;
  /** Renders this API process runs at once (single-process renders); more wait as `queued`. */
  maxConcurrentRenders: number;
  /** Distinct outputs (formats, frames, qualities) one token may ask for. */
  maxOutputsPerToken: number;
  /** Trust X-Forwarded-* headers (only behind a proxy that sets them). */
  trustProxy: boolean;
  /** An ffmpeg process silent for this long (no progress, no output) is killed. */
  stallTimeoutMs: number;
  /** STORAGE_URL: where outputs and segments are kept (a local directory, or S3 for many machines). */
  storage: StorageLocation;
  /** MONGODB_URI: documents live on MongoDB when set, in the embedded nedb store under dataDir otherwise. */
  mongodbUri?: string;
}

export const MONTAGE_CONFIG = Symbol('MONTAGE_CONFIG');

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw badInput(`Environment variable ${name} must be an integer ≥ ${min}, got "${raw}"`, [
      { field: name, message: 'not an integer in range' },
    ]);
  }
  return value;
}

function bool(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw badInput(`Environment variable ${name} must be a boolean (1/0, true/false), got "${raw}"`, [
    { field: name, message: 'not a boolean' },
  ]);
}

function routingKeys(raw: string | undefined): string[] {
  const keys = (raw || 'default').split(',').map((k) => k.trim()).filter(Boolean);
  for (const k of keys) {
    if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(k)) {
      throw badInput(`ROUTING_KEYS: "${k}" is not a routing key (lower-case letters, digits, - and _)`, [{ field: 'ROUTING_KEYS', message: 'invalid' }]);
    }
  }
  return keys;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): MontageConfig {
  const dataDir = path.resolve(cwd, env.MONTAGE_DATA_DIR || 'data');
  return {
    port: int(env, 'PORT', 8080, 0),
    dataDir,
    templatesDir: path.resolve(cwd, env.MONTAGE_TEMPLATES_DIR || 'templates'),
    ffmpegPath: env.FFMPEG_PATH || 'ffmpeg',
    ffprobePath: env.FFPROBE_PATH || 'ffprobe',
    media: {
      allowPrivateAddresses: bool(env, 'MEDIA_ALLOW_PRIVATE', false),
      maxBytes: int(env, 'MEDIA_MAX_BYTES', 200 * 1024 * 1024, 1),
      timeoutMs: int(env, 'MEDIA_TIMEOUT_MS', 30_000, 1),
      maxRedirects: int(env, 'MEDIA_MAX_REDIRECTS', 5, 0),
    },
    ffmpegThreads: int(env, 'FFMPEG_THREADS', 0, 0),
    publicUrl: env.PUBLIC_URL || undefined,
    maxBodyBytes: int(env, 'MAX_BODY_BYTES', 256 * 1024, 1024),
    redisUrl: env.REDIS_URL || undefined,
    routingKeys: routingKeys(env.ROUTING_KEYS),
    concurrency: int(env, 'CONCURRENCY', 1, 1),
    segmentLockMs: int(env, 'SEGMENT_LOCK_MS', 30_000, 1000),
    stalledCheckMs: int(env, 'STALLED_CHECK_MS', 15_000, 500),
    segmentsPerLane: int(env, 'SEGMENTS_PER_LANE', 1, 1),
    embeddedRenderNode: bool(env, 'EMBEDDED_RENDER_NODE', true),
    maxConcurrentRenders: int(env, 'MAX_CONCURRENT_RENDERS', 2, 1),
    maxOutputsPerToken: int(env, 'MAX_OUTPUTS_PER_TOKEN', 64, 1),
    trustProxy: bool(env, 'TRUST_PROXY', false),
    stallTimeoutMs: int(env, 'FFMPEG_STALL_TIMEOUT_MS', 5 * 60_000, 1000),
    mongodbUri: env.MONGODB_URI?.trim() || undefined,
    storage: parseStorageUrl(env.STORAGE_URL, dataDir, env),
  };
}
