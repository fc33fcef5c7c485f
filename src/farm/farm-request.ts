import { badInput, type ErrorDetail } from '../common/errors';
import { FARM_DEVICES, FARM_FRAME_FORMATS, type FarmDevice, type FarmFrameFormat, type SceneInventory, type SceneSettings } from './farm.types';
import { parseFramesSpec, sceneFramesSpec } from './frames-spec';

/** What POST /v1/farm/render (and Fox's POST /v1/farm/tasks) takes. */
export const RENDER_FIELDS = [
  'api_key',
  'upload_id',
  'input_scene_path',
  'blender_version',
  'frames',
  'render_layer',
  'camera',
  'format',
  'resolution_percent',
  'samples',
  'device',
  'parallel',
  'routingkey',
  'project_name',
] as const;

/** A render request's fields, checked for type and shape (the scene is not known yet). */
export interface RenderBody {
  uploadId?: string;
  scenePath?: string;
  blenderVersion?: string;
  frames?: string;
  renderLayer?: string;
  camera?: string;
  format: FarmFrameFormat;
  resolutionPercent?: number;
  samples?: number;
  device: FarmDevice;
  parallel: number;
  routingKey: string;
  projectName?: string;
}

const FORMAT_ALIASES: Record<string, FarmFrameFormat> = {
  png: 'PNG',
  jpeg: 'JPEG',
  jpg: 'JPEG',
  open_exr: 'OPEN_EXR',
  openexr: 'OPEN_EXR',
  exr: 'OPEN_EXR',
  tiff: 'TIFF',
  tif: 'TIFF',
  webp: 'WEBP',
};

/** A request's own object: a plain JSON object, nothing else. */
export function plainObject(body: unknown, what = 'the request body'): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badInput(`${what} must be a JSON object`, [{ field: 'body', message: 'not a JSON object' }]);
  return body as Record<string, unknown>;
}

/** Unknown fields are refused (a typo must not silently render with defaults). */
export function refuseUnknown(body: Record<string, unknown>, known: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    const shown = unknown.slice(0, 10).map((k) => printable(k, 40));
    throw badInput(`unknown field${unknown.length > 1 ? 's' : ''}: ${shown.join(', ')} (known: ${known.join(', ')})`, shown.map((k) => ({ field: k, message: 'unknown field' })));
  }
}

/** A value safe to echo in a message: printable ASCII, bounded. */
export function printable(value: string, max = 80): string {
  const clean = value.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** A string field: bounded, no control characters. Undefined when absent (null counts as absent). */
export function text(body: Record<string, unknown>, field: string, options: { max?: number; pattern?: RegExp; patternMessage?: string } = {}): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  const max = options.max ?? 256;
  if (typeof value !== 'string') throw badInput(`${field} must be a string`, [{ field, message: 'not a string' }]);
  if (value.length === 0 || value.length > max) throw badInput(`${field} must be 1 to ${max} characters`, [{ field, message: `length ${value.length}` }]);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) throw badInput(`${field} must not contain control characters`, [{ field, message: 'control characters' }]);
  if (options.pattern && !options.pattern.test(value)) throw badInput(`${field}: ${options.patternMessage ?? 'not a valid value'}`, [{ field, message: options.patternMessage ?? 'not a valid value' }]);
  return value;
}

/** A whole-number field (a number, or a string of digits as some clients send), within bounds. */
export function whole(body: Record<string, unknown>, field: string, min: number, max: number): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw badInput(`${field} must be a whole number from ${min} to ${max}`, [{ field, message: `not a whole number from ${min} to ${max}` }]);
  return n;
}

export function parseFormat(value: unknown, field = 'format'): FarmFrameFormat {
  if (value === undefined || value === null) return 'PNG';
  const key = typeof value === 'string' && value.length <= 16 ? value.toLowerCase() : '';
  const format = (Object.keys(FARM_FRAME_FORMATS) as FarmFrameFormat[]).find((f) => f.toLowerCase() === key) ?? FORMAT_ALIASES[key];
  if (!format) throw badInput(`${field} must be one of ${Object.keys(FARM_FRAME_FORMATS).join(', ')} (or png, jpg, exr, tif, webp)`, [{ field, message: 'unknown format' }]);
  return format;
}

/** Checks a render request's fields; the scene's own checks come later (settingsFor). */
export function parseRenderBody(raw: unknown): RenderBody {
  const body = plainObject(raw);
  refuseUnknown(body, RENDER_FIELDS);
  const uploadId = text(body, 'upload_id', { max: 128, pattern: /^[A-Za-z0-9_-]+$/, patternMessage: 'letters, digits, - and _ only' });
  const scenePath = text(body, 'input_scene_path', { max: 1024 });
  if (!uploadId && !scenePath) throw badInput('upload_id (or input_scene_path) is required', [{ field: 'upload_id', message: 'required' }]);
  if (uploadId && scenePath) throw badInput('give upload_id or input_scene_path, not both', [{ field: 'input_scene_path', message: 'given with upload_id' }]);
  const deviceRaw = text(body, 'device', { max: 16 });
  const device = deviceRaw === undefined ? 'CPU' : FARM_DEVICES.find((d) => d === deviceRaw.toUpperCase());
  if (!device) throw badInput(`device must be one of ${FARM_DEVICES.join(', ')}`, [{ field: 'device', message: 'unknown device' }]);
  return {
    uploadId,
    scenePath: scenePath?.replace(/\\/g, '/'),
    blenderVersion: text(body, 'blender_version', { max: 32, pattern: /^\d{1,3}(\.\d{1,3}){0,2}$/, patternMessage: 'a version such as 3.4 or 3.4.1' }),
    frames: framesOf(body.frames),
    renderLayer: text(body, 'render_layer', { max: 256 }),
    camera: text(body, 'camera', { max: 256 }),
    format: parseFormat(body.format),
    resolutionPercent: whole(body, 'resolution_percent', 1, 100),
    samples: whole(body, 'samples', 1, 4096),
    device,
    parallel: whole(body, 'parallel', 1, 256) ?? 1,
    routingKey: text(body, 'routingkey', { max: 32, pattern: /^[a-z0-9][a-z0-9_-]{0,31}$/, patternMessage: 'lower-case letters, digits, - and _' }) ?? 'default',
    projectName: text(body, 'project_name', { max: 128 }),
  };
}

function framesOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isInteger(value)) return String(value);
  if (typeof value !== 'string') throw badInput('frames must be a string such as "1-10[1]" or "1,5,10-20"', [{ field: 'frames', message: 'not a string' }]);
  parseFramesSpec(value); // its errors now, before the scene is looked up
  return value;
}

/**
 * The job's settings for this scene: layer and camera must be the scene's (the 400 names the
 * ones it has), frames default to its range, a Blender version must be one a live node runs
 * (major.minor; with no live node it is accepted and the job waits).
 */
export function settingsFor(request: RenderBody, inventory: SceneInventory, liveVersions: string[]): SceneSettings {
  const problems: ErrorDetail[] = [];
  const list = (names: string[]) => (names.length ? names.map((n) => `"${printable(n, 64)}"`).join(', ') : 'none');
  if (request.renderLayer !== undefined && !inventory.viewLayers.includes(request.renderLayer)) {
    problems.push({ field: 'render_layer', message: `the scene has no view layer "${printable(request.renderLayer, 64)}"; it has ${list(inventory.viewLayers)}` });
  }
  if (request.camera !== undefined && !inventory.cameras.includes(request.camera)) {
    problems.push({ field: 'camera', message: `the scene has no camera "${printable(request.camera, 64)}"; it has ${list(inventory.cameras)}` });
  }
  if (request.blenderVersion && liveVersions.length > 0) {
    const minor = (v: string) => v.split('.').slice(0, 2).join('.');
    if (!liveVersions.some((v) => minor(v) === minor(request.blenderVersion!))) {
      problems.push({ field: 'blender_version', message: `no render node runs Blender ${printable(request.blenderVersion)}; available: ${[...new Set(liveVersions)].sort().join(', ')}` });
    }
  }
  if (problems.length > 0) throw badInput(problems.map((p) => `${p.field}: ${p.message}`).join('; '), problems);
  const framesSpec = request.frames ?? sceneFramesSpec(inventory.frameStart, inventory.frameEnd, inventory.frameStep);
  return {
    frames: parseFramesSpec(framesSpec),
    framesSpec,
    ...(request.renderLayer !== undefined ? { renderLayer: request.renderLayer } : {}),
    ...(request.camera !== undefined ? { camera: request.camera } : {}),
    format: request.format,
    resolutionPercent: request.resolutionPercent ?? inventory.resolutionPercent ?? 100,
    ...(request.samples !== undefined ? { samples: request.samples } : {}),
    device: request.device,
    ...(request.blenderVersion ? { blenderVersion: request.blenderVersion } : {}),
  };
}
