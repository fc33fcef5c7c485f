import { createHash } from 'node:crypto';

/** Storage key of a project's file with this sha-256 (hex): the same bytes are stored once per project, never shared across projects. */
export function farmFileKey(project: string, sha256: string): string {
  return `ff${createHash('sha256').update(`${project}\0${sha256}`).digest('hex').slice(0, 40)}`;
}

/** Storage key of frame `frame` of farm job `job` (`job_…`). */
export function farmFrameKey(job: string, frame: number): string {
  return `fr-${job}-${String(frame).padStart(6, '0')}`;
}

/** Storage key of a staged upload (before confirm): `up-<random id>`. */
export function stagedUploadKey(id: string): string {
  return `up-${id}`;
}

/** The Redis hash of a running job's frame states. */
export function frameStatesKey(job: string): string {
  return `montage:farm:${job}:frames`;
}
