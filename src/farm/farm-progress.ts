import type { FarmChunk, FarmJobDoc, FarmJobStatus, FrameState } from './farm.types';

/**
 * A chunk job's state as BullMQ says it (undefined: the queue no longer has it). `ours`: the
 * failed reason is a message of ours (safe to show), not BullMQ's or a tool's.
 */
export type ChunkState = { state: string; failedReason?: string; ours?: boolean } | undefined;

/** Shown for a chunk that failed for a reason that is not ours to show (it may name paths). */
export const CHUNK_FAILED = 'its chunk failed on a render node (the node\'s log has the details)';

export interface FrameView {
  frame: number;
  status: 'waiting' | 'rendering' | 'done' | 'failed';
  node?: string;
  error?: string;
  /** Done frames: where the frame is, for downloads. */
  state?: FrameState;
}

export interface JobProgress {
  status: FarmJobStatus;
  framesCompleted: number;
  totalFrames: number;
  frames: FrameView[];
  /** Nothing of the job runs or waits any more: its states can be copied to the store. */
  settled: boolean;
  /** Some chunk still runs or waits (a stopped job's too: it renders nothing, but it has not left the queue). */
  busy: boolean;
}

/** BullMQ states in which a chunk will still run (or runs now). */
export const PENDING = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children', 'paused', 'wait']);

/**
 * A job's frames and status from what the nodes reported (frame states: Redis while it runs,
 * the stored copy once settled) and what the queue says of its chunks. A frame belongs to the
 * newest chunk that lists it (a retry's chunk supersedes the failed one); a state older than
 * that chunk (other than done) is of an earlier attempt and ignored.
 */
export function deriveProgress(job: Pick<FarmJobDoc, 'settings' | 'chunks' | 'stoppedAt' | 'frames' | 'totalFrames'>, live: Record<number, FrameState>, chunkStates: Map<string, ChunkState>): JobProgress {
  const owner = new Map<number, FarmChunk>();
  for (const chunk of job.chunks) for (const f of chunk.frames) owner.set(f, chunk); // later chunks win
  const running = job.chunks.some((c) => chunkStates.get(c.jobId)?.state === 'active');
  const pending = job.chunks.some((c) => PENDING.has(chunkStates.get(c.jobId)?.state ?? ''));
  const stopped = !!job.stoppedAt;
  const frames: FrameView[] = job.settings.frames.map((frame) => {
    const chunk = owner.get(frame);
    const state = live[frame] ?? job.frames?.[String(frame)];
    if (state?.status === 'done') return { frame, status: 'done', node: state.node, state };
    const current = state && (!chunk?.createdAt || state.at >= chunk.createdAt) ? state : undefined;
    const chunkState = chunk ? chunkStates.get(chunk.jobId) : undefined;
    if (current?.status === 'failed') return { frame, status: 'failed', node: current.node, ...(current.error ? { error: current.error } : {}) };
    if (chunkState?.state === 'failed') return { frame, status: 'failed', ...(current ? { node: current.node } : {}), error: chunkFailure(chunkState) };
    if (current?.status === 'rendering' && chunkState?.state === 'active') return { frame, status: 'rendering', node: current.node };
    const chunkWillRun = chunkState && (chunkState.state === 'active' || PENDING.has(chunkState.state));
    // Its chunk ended (or is gone) without this frame, and nobody stopped the job: it is lost.
    if (!chunkWillRun && !stopped) return { frame, status: 'failed', ...(current ? { node: current.node } : {}), error: 'its chunk ended without rendering it' };
    return { frame, status: 'waiting' };
  });
  const done = frames.filter((f) => f.status === 'done').length;
  const failed = frames.some((f) => f.status === 'failed');
  let status: FarmJobStatus = 'In progress';
  // Every frame done: Finished, even when a stop came after the last one.
  if (done === frames.length) status = 'Finished';
  else if (stopped && !running) status = 'Stopped';
  else if (!running && !pending && failed) status = 'Failed';
  // Settled only once no chunk is left to wake up: a stopped job's chunk that went back to
  // the queue (a BullMQ retry) must not outlive its job's Redis state.
  const busy = running || pending;
  return { status, framesCompleted: done, totalFrames: job.totalFrames, frames, settled: status !== 'In progress' && !busy, busy };
}

/** A failed chunk's reason for clients: ours (a MontageError's message) in one line, else a fixed sentence. */
export function chunkFailure(chunk: NonNullable<ChunkState>): string {
  return chunk.ours && chunk.failedReason ? oneLine(chunk.failedReason) : CHUNK_FAILED;
}

/** Reasons shown to clients: one line, bounded. */
export function oneLine(text: string): string {
  return text.split('\n')[0].slice(0, 300);
}
