import * as path from 'node:path';
import { badInput } from '../common/errors';

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
    mongodbUri: env.MONGODB_URI?.trim() || undefined,
  };
}
