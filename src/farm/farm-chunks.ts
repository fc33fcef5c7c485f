/** The BullMQ id of chunk `index` of a farm job, for one attempt (a retry's chunks are new jobs: `a2`, `a3`, …). */
export function farmChunkJobId(job: string, index: number, attempt: number): string {
  return `farm-${job}-c${index}-a${attempt}`;
}

/** `farm-<job>-c<i>-a<attempt>` → its parts (undefined for another shape). */
export function parseFarmChunkJobId(id: string): { job: string; index: number; attempt: number } | undefined {
  const m = /^farm-(.+)-c(\d+)-a(\d+)$/.exec(id);
  return m ? { job: m[1], index: Number(m[2]), attempt: Number(m[3]) } : undefined;
}

/**
 * Frames → chunks (one Blender each) of at most `chunkFrames` consecutive entries of the list,
 * smaller when that gives fewer than `parallel` chunks, so that `parallel` nodes have work
 * whenever there are frames enough. Sizes differ by one at most; the order is kept.
 */
export function chunkFrames(frames: number[], chunkSize: number, parallel = 1): number[][] {
  if (frames.length === 0) return [];
  const size = Math.max(1, Math.floor(chunkSize));
  const count = Math.min(frames.length, Math.max(Math.ceil(frames.length / size), Math.max(1, Math.floor(parallel))));
  const chunks: number[][] = [];
  const base = Math.floor(frames.length / count);
  const extra = frames.length % count;
  let at = 0;
  for (let i = 0; i < count; i++) {
    const n = base + (i < extra ? 1 : 0);
    chunks.push(frames.slice(at, at + n));
    at += n;
  }
  return chunks;
}
