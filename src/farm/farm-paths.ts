import { badInput, unusableMedia } from '../common/errors';
import type { FarmFileKind, ModelInfo } from './farm.types';

/**
 * Pure checks of what clients name and send: paths of uploads (and of archive entries), the
 * kind of a file from its first bytes, glTF headers, a scene's external files. Every path a
 * node lays out comes through `normaliseFarmPath`, so none is absolute or climbs out.
 */

export const MAX_PATH_CHARS = 1024;
const MAX_SEGMENT_CHARS = 255;
// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** Why a relative path is refused, or undefined with the normalised path. */
export function pathProblem(raw: unknown): { path?: string; problem?: string } {
  if (typeof raw !== 'string' || raw.length === 0) return { problem: 'must be a non-empty relative path' };
  if (raw.length > MAX_PATH_CHARS) return { problem: `longer than ${MAX_PATH_CHARS} characters` };
  if (CONTROL.test(raw)) return { problem: 'contains control characters' };
  if (raw.includes('\\')) return { problem: 'contains a backslash: use / between folders' };
  if (raw.startsWith('/') || raw.startsWith('~') || /^[A-Za-z]:/.test(raw)) return { problem: 'must be relative (no leading /, ~ or drive letter)' };
  const parts = raw.normalize('NFC').split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0) return { problem: 'names no file' };
  if (parts.some((p) => p === '..')) return { problem: 'may not contain ".." (climb out of its folder)' };
  if (parts.some((p) => p.length > MAX_SEGMENT_CHARS)) return { problem: `a folder or file name is longer than ${MAX_SEGMENT_CHARS} characters` };
  if (parts.some((p) => /^\.+$/.test(p) || /[.\s]$/.test(p) || /[<>:"|?*]/.test(p))) return { problem: 'a name ends in a dot or space, or holds one of < > : " | ? *' };
  return { path: parts.join('/') };
}

/** A client's relative path, normalised (`./a//b.png` → `a/b.png`); a 400 naming `field` otherwise. */
export function normaliseFarmPath(raw: unknown, field = 'filename'): string {
  const { path, problem } = pathProblem(raw);
  if (!path) throw badInput(`${field} ${problem}`, [{ field, message: problem! }]);
  return path;
}

/** The folder of a normalised path (`''` at the top). */
export function folderOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at < 0 ? '' : path.slice(0, at);
}

export function joinPath(folder: string, path: string): string {
  return folder ? `${folder}/${path}` : path;
}

/** The storage extension of a name: its own, lower-cased, when it is a plain one; `bin` otherwise. */
export function extOf(path: string): string {
  const m = /\.([A-Za-z0-9]{1,10})$/.exec(path);
  return m ? m[1].toLowerCase() : 'bin';
}

/** What a file's first bytes (≥ 512 for tar) and its name make of it. */
export type DetectedKind = { kind: 'blend' } | { kind: 'glb' } | { kind: 'gltf' } | { kind: 'archive'; format: 'zip' | 'tar' } | { kind: 'asset' };

const startsWith = (head: Buffer, bytes: number[] | string) => {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
  return head.length >= b.length && head.subarray(0, b.length).equals(b);
};
const ZSTD = [0x28, 0xb5, 0x2f, 0xfd];
const GZIP = [0x1f, 0x8b];

/**
 * The kind of an upload from its bytes; the name only says what the client meant (a `.blend`
 * that is not one, a `.zip` that is not one: 422). `field` names it in the refusal.
 */
export function detectKind(path: string, head: Buffer, field = 'filename'): DetectedKind {
  const ext = extOf(path);
  const refuse = (message: string) => unusableMedia(`${path}: ${message}`, [{ field, message }]);
  if (startsWith(head, 'BLENDER')) return { kind: 'blend' };
  if (ext === 'blend') {
    if (startsWith(head, ZSTD) || startsWith(head, GZIP)) {
      throw refuse('a compressed .blend (File › Save with "Compress" on) is refused: save it uncompressed and upload it again');
    }
    throw refuse('not a .blend file (no BLENDER header)');
  }
  if (startsWith(head, 'glTF')) return { kind: 'glb' };
  if (ext === 'glb') throw refuse('not a binary glTF file (no glTF header)');
  if (ext === 'gltf') return { kind: 'gltf' };
  if (ext === 'zip') {
    if (startsWith(head, [0x50, 0x4b, 0x03, 0x04]) || startsWith(head, [0x50, 0x4b, 0x05, 0x06])) return { kind: 'archive', format: 'zip' };
    throw refuse('not a zip archive');
  }
  if (ext === 'tar') {
    if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return { kind: 'archive', format: 'tar' };
    throw refuse('not a tar archive (ustar)');
  }
  return { kind: 'asset' };
}

export const farmKindOf = (detected: DetectedKind): FarmFileKind => (detected.kind === 'blend' ? 'blend' : detected.kind === 'glb' || detected.kind === 'gltf' ? 'model' : 'asset');

/** GLB header: magic, version 2, total length; then the JSON chunk's length (it must come first). */
export function glbJsonChunk(header: Buffer, fileSize: number): { offset: number; length: number } {
  if (header.length < 20 || !startsWith(header, 'glTF')) throw new GltfProblem('not a binary glTF file');
  const version = header.readUInt32LE(4);
  if (version !== 2) throw new GltfProblem(`glTF version ${version} is not supported (2 is)`);
  if (header.readUInt32LE(8) !== fileSize) throw new GltfProblem('its header length does not match the file (cut off?)');
  const length = header.readUInt32LE(12);
  if (header.readUInt32LE(16) !== 0x4e4f534a) throw new GltfProblem('its first chunk is not JSON');
  if (20 + length > fileSize) throw new GltfProblem('its JSON chunk runs past the end of the file');
  return { offset: 20, length };
}

export class GltfProblem extends Error {}

/**
 * A glTF document checked: version 2.x, at least one mesh, and every URI either embedded
 * (`data:`) or a relative path that stays in the model's folder (`external`, normalised).
 */
export function checkGltfJson(text: string, container: 'glb' | 'gltf'): ModelInfo & { external: string[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new GltfProblem('its JSON does not parse');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new GltfProblem('its JSON is not an object');
  const gltf = doc as Record<string, unknown>;
  const asset = gltf.asset as Record<string, unknown> | undefined;
  if (!asset || typeof asset.version !== 'string' || !/^2\.\d+$/.test(asset.version)) throw new GltfProblem('asset.version must be 2.x');
  const meshes = Array.isArray(gltf.meshes) ? gltf.meshes.length : 0;
  if (meshes === 0) throw new GltfProblem('it has no mesh');
  const external: string[] = [];
  for (const list of ['buffers', 'images'] as const) {
    const items = gltf[list];
    if (!Array.isArray(items)) continue;
    for (const [i, item] of items.entries()) {
      const uri = (item as Record<string, unknown> | null)?.uri;
      if (uri === undefined) continue;
      if (typeof uri !== 'string') throw new GltfProblem(`${list}[${i}].uri is not a string`);
      if (uri.startsWith('data:')) continue;
      if (/^[a-z][a-z0-9+.-]*:/i.test(uri)) throw new GltfProblem(`${list}[${i}].uri: only embedded data: URIs and relative files are allowed`);
      let decoded: string;
      try {
        decoded = decodeURIComponent(uri);
      } catch {
        throw new GltfProblem(`${list}[${i}].uri is not a valid URI`);
      }
      const { path, problem } = pathProblem(decoded);
      if (!path) throw new GltfProblem(`${list}[${i}].uri ${problem}`);
      external.push(path);
    }
  }
  const generator = typeof asset.generator === 'string' ? asset.generator.slice(0, 200) : undefined;
  return { container, meshes, nodes: Array.isArray(gltf.nodes) ? gltf.nodes.length : 0, ...(generator ? { generator } : {}), external };
}

/**
 * External files of a scene that a node would not lay out: absolute ones, ones not relative
 * to the .blend (`//`), and ones that climb out of its folder (`//../x.png`).
 */
export function escapingExternalFiles(externalFiles: string[]): string[] {
  return externalFiles.filter((raw) => {
    if (!raw) return false;
    if (!raw.startsWith('//')) return true;
    const rest = raw.slice(2).replace(/\\/g, '/');
    let depth = 0;
    for (const part of rest.split('/')) {
      if (part === '..') depth--;
      else if (part !== '' && part !== '.') depth++;
      if (depth < 0) return true;
    }
    return /^[A-Za-z]:/.test(rest);
  });
}

/**
 * A file's path inside a job's folder, checked again on the node (pure): whatever the API
 * stored, a node writes only below the folder it made.
 */
export function layoutPath(p: string): string {
  if (typeof p !== 'string' || p.length === 0) throw new Error('empty path');
  if (p.length > 1024) throw new Error('path too long');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(p)) throw new Error('control character or backslash in path');
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) throw new Error('absolute path');
  const parts = p.split('/');
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..') throw new Error(`"${part}" segment in path`);
    if (Buffer.byteLength(part) > 255) throw new Error('path segment too long');
  }
  return parts.join('/');
}
