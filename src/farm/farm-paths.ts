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
