import * as path from 'node:path';
import { badInput } from '../common/errors';
import { parseStorageUrl, type StorageLocation } from '../repositories/output-storage/location';
import { FARM_SANDBOX_MODES, type FarmSandboxMode } from '../farm/farm-sandbox';

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
  /** Jobs (outputs, segments) a render node renders at once; the embedded node's default is 2. */
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
  /**
   * Distributed renders of the compositor store their segments by content and reuse them:
   * a render whose params change only some seconds renders only those (SEGMENT_REUSE=false: off).
   */
  segmentReuse: boolean;
  /** Run a render node inside the API process (the embedded default). */
  embeddedRenderNode: boolean;
  /** Distributed renders a node assembles at once (joining and sound: light work beside its renders). */
  assemblyConcurrency: number;
  /** Montage's version, as nodes advertise it and /health shows it. */
  version: string;
  /** Distinct outputs (formats, frames, qualities) one token may ask for. */
  maxOutputsPerToken: number;
  /** Trust X-Forwarded-* headers (only behind a proxy that sets them). */
  trustProxy: boolean;
  /** An ffmpeg process whose frame count (or output size) has not moved for this long is killed. */
  stallTimeoutMs: number;
  /** Blender on render nodes (the `blender` engine). */
  blender: {
    /** The binary (BLENDER_PATH): Debian's renders on CPU; a blender.org build has CUDA, OptiX and HIP. */
    path: string;
    /** Render threads per Blender (0: every core); pin a node to its cores with taskset and set this to match. */
    threads: number;
    /** A frame that takes longer than this stops the render (a template may set its own `frameTimeout`). */
    frameTimeoutMs: number;
    /** Frames per chunk before a scene's time per frame is known. */
    chunkFrames: number;
    /** What a chunk should take once the time per frame is known. */
    chunkSeconds: number;
    /** Off: the node takes no Blender jobs even where Blender is installed. */
    enabled: boolean;
    /** How long a Blender keeps a scene loaded for the next chunk of it (0: one Blender per chunk). */
    keepAliveMs: number;
  };
  /** Render-farm jobs and product renders (issue 14). */
  farm: {
    /** Largest single upload (a .blend, a model, an asset, an archive): the presigned POST's content-length-range and the confirm check. */
    maxFileBytes: number;
    /** An archive's entries at most, and their total unpacked size at most. */
    maxArchiveEntries: number;
    maxArchiveBytes: number;
    /** How long presigned upload and download URLs work. */
    urlTtlSec: number;
    /** Frames per chunk of a scene job (one Blender per chunk). */
    chunkFrames: number;
    /** How long a confirm waits for a node to read a .blend's inventory. */
    inspectTimeoutMs: number;
    /** Farm Blenders in bubblewrap: auto (where `bwrap` works on the node), bwrap (required: a node without it does not start), off. */
    sandbox: FarmSandboxMode;
    /** A product render request still unfinished this long after it was made is failed (renders.failed / turntable.failed). */
    productDeadlineSec: number;
  };
  /** How long a fetched media file may take to prove it decodes (a few frames), before it is refused. */
  mediaCheckTimeoutMs: number;
  /** After SIGTERM/SIGINT: how long running renders and segments get to finish before they are handed back. */
  shutdownGraceMs: number;
  /** Start-up: give up (exit 1) when a dependency is still unreachable after this long; 0 waits for ever. */
  startupTimeoutMs: number;
  /** A distributed render whose Redis stays unreachable this long fails (the next GET starts it again). */
  queueOutageTimeoutMs: number;
  /** Disk and store retention: the sweeper. */
  retention: RetentionConfig;
  /** Defaults of each project's rate limits and quotas (a project's own values win). */
  limits: LimitDefaults;
  /** STORAGE_URL: where outputs and segments are kept (a local directory, or S3 for many machines). */
  storage: StorageLocation;
  /** MONGODB_URI: documents live on MongoDB when set, in the embedded nedb store under dataDir otherwise. */
  mongodbUri?: string;
  /** MONTAGE_SECRET_KEY: seals credentials at rest; unset, a key is generated into `<dataDir>/secret.key`. */
  secretKey?: string;
  /** Uploads, webhooks and batches: the delivery workers every API process runs. */
  deliveries: DeliveriesConfig;
}

export interface DeliveriesConfig {
  /** Run upload, webhook and batch workers in this API process (all API processes share the queues). */
  workers: boolean;
  /** Upload destinations and webhook URLs may be private, loopback or link-local addresses (tests, intranets). */
  allowPrivateAddresses: boolean;
  /** Uploads one API process runs at once. */
  uploadConcurrency: number;
  /** Tries of one upload before it fails for good (exponential backoff from `uploadBackoffMs`). */
  uploadAttempts: number;
  uploadBackoffMs: number;
  /** Webhook messages one API process sends at once. */
  webhookConcurrency: number;
  /** A webhook receiver that has not answered within this fails the attempt. */
  webhookTimeoutMs: number;
  /** Seconds between attempts after the first (Standard Webhooks' schedule by default); ±20 % jitter. */
  webhookRetrySchedule: number[];
  /** Batch items one API process renders at once (each waits for the farm). */
  batchConcurrency: number;
  /** Results per batch webhook call, and how long a finished item waits for others before it is sent. */
  batchWebhookSize: number;
  batchWebhookDelayMs: number;
  /** Items one batch may have. */
  batchMaxItems: number;
  /** Largest batch request body, in bytes. */
  batchMaxBodyBytes: number;
  /** Where the YouTube and Facebook uploaders talk to: their public APIs; set only for test servers. */
  youtubeApiUrl: string;
  youtubeOauthUrl: string;
  facebookGraphUrl: string;
}

export interface RetentionConfig {
  /** How often the sweeper runs (caches, outputs, tokens, leftovers of dead renders). */
  sweepIntervalMs: number;
  /** Asset and raster caches together, per data dir: the least recently used go beyond this. */
  cacheMaxBytes: number;
  /** Segments, staging and live files of renders that no longer run are removed once this old. */
  orphanGraceMs: number;
  /** Default for projects: a stored output not fetched for this many days is removed (0: kept). */
  outputTtlDays: number;
  /** Default for projects: tokens expire this many days after they are made (0: never). */
  tokenTtlDays: number;
  /** Default for projects: bytes of stored outputs a project may keep (0: no limit). */
  maxStoredBytes: number;
}

export interface LimitDefaults {
  /** Authenticated requests per API key per minute (0: no limit). */
  requestsPerMinute: number;
  /** Renders running at once per API key (0: no limit). */
  rendersRunning: number;
  /** Width × height × seconds rendered per API key per UTC day (0: no limit). */
  pixelSecondsPerDay: number;
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

function seconds(env: NodeJS.ProcessEnv, name: string, fallback: number[]): number[] {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const values = raw.split(',').map((v) => Number(v.trim()));
  if (values.length === 0 || values.length > 50 || values.some((v) => !Number.isFinite(v) || v < 0 || v > 7 * 24 * 3600)) {
    throw badInput(`Environment variable ${name} must be a comma-separated list of seconds (0–604800), got "${raw}"`, [{ field: name, message: 'not a list of seconds' }]);
  }
  return values;
}

/** Standard Webhooks' schedule after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h. */
export const WEBHOOK_RETRY_SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];

function routingKeys(raw: string | undefined): string[] {
  const keys = (raw || 'default').split(',').map((k) => k.trim()).filter(Boolean);
  for (const k of keys) {
    if (!/^[a-z0-9][a-z0-9_-]{0,31}$/.test(k)) {
      throw badInput(`ROUTING_KEYS: "${k}" is not a routing key (lower-case letters, digits, - and _)`, [{ field: 'ROUTING_KEYS', message: 'invalid' }]);
    }
  }
  return keys;
}

function sandboxMode(raw: string | undefined): FarmSandboxMode {
  const mode = (raw || 'auto').trim().toLowerCase();
  if (!(FARM_SANDBOX_MODES as readonly string[]).includes(mode)) {
    throw badInput(`Environment variable FARM_SANDBOX must be one of ${FARM_SANDBOX_MODES.join(', ')}, got "${raw}"`, [{ field: 'FARM_SANDBOX', message: 'not a sandbox mode' }]);
  }
  return mode as FarmSandboxMode;
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
    // The embedded node stands in for the renders the API used to run itself, two at once.
    concurrency: int(env, 'CONCURRENCY', bool(env, 'EMBEDDED_RENDER_NODE', true) && !env.REDIS_URL ? 2 : 1, 1),
    segmentLockMs: int(env, 'SEGMENT_LOCK_MS', 30_000, 1000),
    stalledCheckMs: int(env, 'STALLED_CHECK_MS', 15_000, 500),
    segmentsPerLane: int(env, 'SEGMENTS_PER_LANE', 1, 1),
    segmentReuse: bool(env, 'SEGMENT_REUSE', true),
    embeddedRenderNode: bool(env, 'EMBEDDED_RENDER_NODE', true),
    assemblyConcurrency: int(env, 'ASSEMBLY_CONCURRENCY', 4, 1),
    version: env.npm_package_version || '0.1.0',
    maxOutputsPerToken: int(env, 'MAX_OUTPUTS_PER_TOKEN', 64, 1),
    trustProxy: bool(env, 'TRUST_PROXY', false),
    stallTimeoutMs: int(env, 'FFMPEG_STALL_TIMEOUT_MS', 20_000, 1000),
    blender: {
      path: env.BLENDER_PATH || 'blender',
      threads: int(env, 'BLENDER_THREADS', 0, 0),
      frameTimeoutMs: int(env, 'BLENDER_FRAME_TIMEOUT_MS', 300_000, 1000),
      chunkFrames: int(env, 'BLENDER_CHUNK_FRAMES', 12, 1),
      chunkSeconds: int(env, 'BLENDER_CHUNK_SECONDS', 10, 1),
      enabled: bool(env, 'BLENDER_ENABLED', true),
      keepAliveMs: int(env, 'BLENDER_KEEP_ALIVE_MS', 30_000, 0),
    },
    farm: {
      maxFileBytes: int(env, 'FARM_MAX_FILE_BYTES', 2 * 1024 ** 3, 1),
      maxArchiveEntries: int(env, 'FARM_MAX_ARCHIVE_ENTRIES', 10_000, 1),
      maxArchiveBytes: int(env, 'FARM_MAX_ARCHIVE_BYTES', 8 * 1024 ** 3, 1),
      urlTtlSec: int(env, 'FARM_URL_TTL_SEC', 3600, 10),
      chunkFrames: int(env, 'FARM_CHUNK_FRAMES', 4, 1),
      inspectTimeoutMs: int(env, 'FARM_INSPECT_TIMEOUT_MS', 120_000, 1000),
      sandbox: sandboxMode(env.FARM_SANDBOX),
      productDeadlineSec: int(env, 'FARM_PRODUCT_DEADLINE_SEC', 6 * 3600, 10),
    },
    mediaCheckTimeoutMs: int(env, 'MEDIA_CHECK_TIMEOUT_MS', 15_000, 500),
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 10_000, 0),
    startupTimeoutMs: int(env, 'STARTUP_TIMEOUT_MS', 0, 0),
    queueOutageTimeoutMs: int(env, 'QUEUE_OUTAGE_TIMEOUT_MS', 15_000, 500),
    retention: {
      sweepIntervalMs: int(env, 'SWEEP_INTERVAL_MS', 60_000, 100),
      cacheMaxBytes: int(env, 'CACHE_MAX_BYTES', 10 * 1024 ** 3, 0),
      orphanGraceMs: int(env, 'ORPHAN_GRACE_MS', 2 * 60_000, 0),
      outputTtlDays: int(env, 'OUTPUT_TTL_DAYS', 30, 0),
      tokenTtlDays: int(env, 'TOKEN_TTL_DAYS', 0, 0),
      maxStoredBytes: int(env, 'MAX_STORED_BYTES', 0, 0),
    },
    limits: {
      requestsPerMinute: int(env, 'RATE_LIMIT_REQUESTS_PER_MINUTE', 600, 0),
      rendersRunning: int(env, 'RATE_LIMIT_RENDERS_RUNNING', 32, 0),
      pixelSecondsPerDay: int(env, 'QUOTA_PIXEL_SECONDS_PER_DAY', 0, 0),
    },
    mongodbUri: env.MONGODB_URI?.trim() || undefined,
    secretKey: env.MONTAGE_SECRET_KEY?.trim() || undefined,
    deliveries: {
      workers: bool(env, 'DELIVERY_WORKERS', true),
      allowPrivateAddresses: bool(env, 'DELIVERY_ALLOW_PRIVATE', bool(env, 'MEDIA_ALLOW_PRIVATE', false)),
      uploadConcurrency: int(env, 'UPLOAD_CONCURRENCY', 2, 1),
      uploadAttempts: int(env, 'UPLOAD_ATTEMPTS', 5, 1),
      uploadBackoffMs: int(env, 'UPLOAD_BACKOFF_MS', 5000, 1),
      webhookConcurrency: int(env, 'WEBHOOK_CONCURRENCY', 8, 1),
      webhookTimeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 15_000, 100),
      webhookRetrySchedule: seconds(env, 'WEBHOOK_RETRY_SCHEDULE', WEBHOOK_RETRY_SCHEDULE),
      batchConcurrency: int(env, 'BATCH_CONCURRENCY', 8, 1),
      batchWebhookSize: int(env, 'BATCH_WEBHOOK_SIZE', 50, 1),
      batchWebhookDelayMs: int(env, 'BATCH_WEBHOOK_DELAY_MS', 5000, 0),
      batchMaxItems: int(env, 'BATCH_MAX_ITEMS', 10_000, 1),
      batchMaxBodyBytes: int(env, 'BATCH_MAX_BODY_BYTES', 16 * 1024 * 1024, 1024),
      youtubeApiUrl: env.YOUTUBE_API_URL || 'https://www.googleapis.com',
      youtubeOauthUrl: env.YOUTUBE_OAUTH_URL || 'https://oauth2.googleapis.com/token',
      facebookGraphUrl: env.FACEBOOK_GRAPH_URL || 'https://graph-video.facebook.com/v19.0',
    },
    storage: parseStorageUrl(env.STORAGE_URL, dataDir, env),
  };
}
