/**
 * What Blender and the scene script print, line by line (pure parsers, tested on captured
 * output): a frame saved, the device used, a binding that does not fit, Blender's own errors.
 */
export type BlenderLogEvent =
  | { kind: 'saved'; path: string }
  | { kind: 'device'; type: string; devices: string[] }
  | { kind: 'binding-error'; binding?: number; message: string }
  /** This node's Blender cannot use the device asked for (a node's problem: another node may). */
  | { kind: 'device-error'; message: string }
  /** A serving Blender finished a chunk. */
  | { kind: 'chunk-done' }
  | { kind: 'json'; tag: BlenderJsonTag; value: unknown };

/** Lines that carry JSON answers: a template scene's inventory, this Blender's devices, a farm scene's inventory. */
export type BlenderJsonTag = 'MONTAGE_INVENTORY' | 'MONTAGE_DEVICES' | 'MONTAGE_FARM_INVENTORY';

const SAVED = /^Saved: '(.+)'\s*$/;
const TAGGED = /^(MONTAGE_ERROR|MONTAGE_DEVICE_ERROR|MONTAGE_DEVICE|MONTAGE_CHUNK|MONTAGE_INVENTORY|MONTAGE_DEVICES|MONTAGE_FARM_INVENTORY) (\{.*\})\s*$/;

export function parseBlenderLine(line: string): BlenderLogEvent | undefined {
  const saved = SAVED.exec(line);
  if (saved) return { kind: 'saved', path: saved[1] };
  const tagged = TAGGED.exec(line);
  if (!tagged) return undefined;
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(tagged[2]) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  switch (tagged[1]) {
    case 'MONTAGE_ERROR':
      return { kind: 'binding-error', ...(typeof value.binding === 'number' ? { binding: value.binding } : {}), message: String(value.message ?? 'a binding does not fit the scene') };
    case 'MONTAGE_DEVICE_ERROR':
      return { kind: 'device-error', message: String(value.message ?? 'the device asked for is not available') };
    case 'MONTAGE_CHUNK':
      return { kind: 'chunk-done' };
    case 'MONTAGE_DEVICE':
      return { kind: 'device', type: String(value.type), devices: Array.isArray(value.devices) ? value.devices.map(String) : [] };
    default:
      return { kind: 'json', tag: tagged[1] as BlenderJsonTag, value };
  }
}

/** Splits a stream of chunks into whole lines. */
export class LineSplitter {
  private rest = '';
  push(chunk: string): string[] {
    const lines = (this.rest + chunk).split('\n');
    this.rest = lines.pop() ?? '';
    return lines.map((l) => l.replace(/\r$/, ''));
  }
  end(): string[] {
    const last = this.rest;
    this.rest = '';
    return last ? [last.replace(/\r$/, '')] : [];
  }
}

/**
 * Blender's own words for a failure: its `Error:` lines and the end of a Python traceback,
 * without the progress noise around them.
 */
export function blenderErrorSummary(lines: string[], max = 4): string {
  const picked: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    if (/^(Error|ERROR|Fatal|Traceback)|Error:|error:|^[A-Za-z]*(Error|Exception)\b|Found no Cycles device|Segmentation fault|Killed|Unable to open|Cannot read file|not a blend file|Warning: Unable/.test(line)) {
      if (!line.startsWith('Traceback') && !/^File "/.test(line)) picked.push(line);
    }
  }
  const unique = [...new Set(picked)];
  if (unique.length > 0) return unique.slice(-max).join(' | ').slice(0, 600);
  const tail = lines.map((l) => l.trim()).filter((l) => l && !/^Fra:|^Blender quit|^ Time:|^Time:/.test(l));
  return tail.slice(-2).join(' | ').slice(0, 600) || 'Blender exited without saying why';
}
