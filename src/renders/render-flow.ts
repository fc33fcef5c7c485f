import type { FrameRange } from '../compiler/ffmpeg-args';
import { renderFailed } from '../common/errors';
import {
  ASSEMBLY_QUEUE,
  type AssembleRenderPayload,
  type AssembleRenderResult,
  type FlowJob,
  JobName,
  queueName,
  type RenderSegmentPayload,
  type RenderSegmentResult,
  segmentJobId,
} from '../jobs/job.types';

export interface RenderFlowInput {
  renderKey: string;
  /** Unique per run of the render (its attempt and a nonce): job ids must not meet old ones. */
  run: string;
  routingKey: string;
  parallel: number;
  totalFrames: number;
  ranges: FrameRange[];
  /** The payload of segment i. */
  segment(i: number): RenderSegmentPayload;
}

/**
 * A distributed render as one BullMQ flow (pure): the assembly job is the parent, and the
 * segments are its descendants in `parallel` lanes. Segment i is in lane i mod parallel and
 * is the child of the next segment of its lane, so a lane runs its segments one after the
 * other, first to last, and at most `parallel` segments of the render run at once: exactly
 * what the API used to schedule itself. The last segment of each lane is a child of the
 * assembly job, which runs once every lane is done. Segments are prioritised in frame
 * order, so the first (what a viewer waits for) is always taken first.
 */
export function planRenderFlow(input: RenderFlowInput): { root: FlowJob; parentId: string; segmentIds: string[] } {
  const run = `${input.renderKey}-a${input.run}`;
  const segmentIds = input.ranges.map((r) => segmentJobId(run, r));
  const lanes = Math.max(1, Math.min(input.parallel, input.ranges.length));
  const children: FlowJob[] = [];
  for (let lane = 0; lane < lanes; lane++) {
    let chain: FlowJob | undefined;
    for (let i = lane; i < input.ranges.length; i += lanes) {
      chain = {
        name: JobName.RenderSegment,
        queue: queueName(input.routingKey),
        jobId: segmentIds[i],
        payload: input.segment(i),
        // Earlier frames first: a node that frees up takes the segment the stream needs next.
        priority: i + 1,
        children: chain ? [chain] : undefined,
      };
    }
    children.push(chain!);
  }
  const payload: AssembleRenderPayload = { renderKey: input.renderKey, totalFrames: input.totalFrames, segments: input.ranges.length };
  const root: FlowJob<JobName.AssembleRender> = { name: JobName.AssembleRender, queue: ASSEMBLY_QUEUE, jobId: run, payload, children };
  return { root, parentId: run, segmentIds };
}

/**
 * The assembly job's check, once every lane is done: the lanes together hold every segment
 * and every frame of the movie. The API streams and stores the joined video itself, as the
 * segments arrive; this is the flow's own record that the render's work is complete.
 */
export function checkAssembly(payload: AssembleRenderPayload, lanes: RenderSegmentResult[]): AssembleRenderResult {
  const frames = lanes.reduce((sum, r) => sum + r.laneFrames, 0);
  const segments = lanes.reduce((sum, r) => sum + r.laneSegments, 0);
  if (frames !== payload.totalFrames || segments !== payload.segments) {
    throw renderFailed(`render ${payload.renderKey}: segments hold ${frames} frames in ${segments} segments, expected ${payload.totalFrames} in ${payload.segments}`);
  }
  return { frames, segments };
}
