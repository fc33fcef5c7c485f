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

/**
 * Bump when the compositor draws the same inputs differently: a stored segment is only
 * reused by the code that would have rendered it the same.
 */
export const SEGMENT_FORMAT = 1;

export interface SegmentIdentity {
  project: string;
  movie: string;
  templateVersion: string;
  /** The segment's own profile (format, codec settings, video only). */
  profile: unknown;
  range: { from: number; to: number };
  /**
   * What is drawn in the range: the resolved movie cut to it (`pictureOf`: every param applied,
   * times in frames, layers not seen there left out). Equal pictures render equal frames.
   */
  picture: unknown;
}

/** The content address of one segment: two renders that draw the same range alike share it. */
export function segmentKey(identity: SegmentIdentity): string {
  return `sg${createHash('sha256').update(canonicalJson({ format: SEGMENT_FORMAT, ...identity })).digest('hex').slice(0, 40)}`;
}

/** The content address of a movie's sound track (its audio tracks and clips, mixed and encoded once). */
export function soundKey(identity: { project: string; movie: string; templateVersion: string; output: string; sound: unknown }): string {
  return `sd${createHash('sha256').update(canonicalJson({ format: SEGMENT_FORMAT, ...identity })).digest('hex').slice(0, 40)}`;
}
