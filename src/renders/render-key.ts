import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level, so equal values always give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export interface RenderIdentity {
  project: string;
  movie: string;
  /** Content hash of the template folder: editing a template makes new renders. */
  templateVersion: string;
  /** Validated params (defaults applied), so `{}` and `{name: <default>}` are one render. */
  params: unknown;
  /** Everything that changes the bytes of the output. */
  profile: unknown;
}

/** The content address of an output: equal inputs share one render and one stored file. */
export function renderKey(identity: RenderIdentity): string {
  return createHash('sha256').update(canonicalJson(identity)).digest('hex').slice(0, 40);
}
