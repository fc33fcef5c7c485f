import type { SceneInventory } from './farm.types';

const MAX_NAMES = 1000;
const MAX_NAME = 1024;

/**
 * The inventory montage_farm.py printed, checked field by field (pure): it comes from a file
 * anyone may upload, so only the expected fields, of the expected types, within bounds.
 * Undefined when it is not one.
 */
export function parseSceneInventory(value: unknown): SceneInventory | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  const str = (x: unknown) => (typeof x === 'string' && x.length <= MAX_NAME && !x.includes('\u0000') ? x : undefined);
  const names = (x: unknown) => (Array.isArray(x) ? x.slice(0, MAX_NAMES).map(str).filter((s): s is string => s !== undefined) : undefined);
  const int = (x: unknown) => (typeof x === 'number' && Number.isInteger(x) && Math.abs(x) <= 1e9 ? x : undefined);
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) && Math.abs(x) <= 1e9 ? x : undefined);
  const scene = str(v.scene);
  const cameras = names(v.cameras);
  const viewLayers = names(v.viewLayers);
  const externalFiles = names(v.externalFiles);
  const [frameStart, frameEnd, frameStep, width, height, resolutionPercent] = [v.frameStart, v.frameEnd, v.frameStep, v.width, v.height, v.resolutionPercent].map(int);
  const fps = num(v.fps);
  const engine = str(v.engine);
  if (scene === undefined || !cameras || !viewLayers || !externalFiles || engine === undefined || fps === undefined) return undefined;
  if (frameStart === undefined || frameEnd === undefined || frameStep === undefined || width === undefined || height === undefined || resolutionPercent === undefined) return undefined;
  const camera = str(v.camera);
  const savedWith = str(v.savedWith);
  return {
    scene,
    cameras,
    ...(camera !== undefined ? { camera } : {}),
    viewLayers,
    frameStart,
    frameEnd,
    frameStep,
    fps,
    width,
    height,
    resolutionPercent,
    engine,
    externalFiles,
    ...(savedWith !== undefined ? { savedWith } : {}),
  };
}
