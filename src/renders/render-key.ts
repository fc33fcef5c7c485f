import { createHash } from 'node:crypto';
import { canonicalJson } from '../common/canonical-json';

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
