/** A single satisfiable byte range, inclusive, as HTTP counts. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a `Range` header against a file size. `undefined`: no (usable) range, send the
 * whole file. `'unsatisfiable'`: answer 416. Multiple ranges are answered with the whole
 * file, which RFC 9110 allows.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return undefined;
  if (m[1] !== '' && m[2] !== '' && Number(m[2]) < start) return undefined; // invalid (last < first): ignored, RFC 9110 §14.1.1
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
