import type { FrameRange } from '../../src/compiler/ffmpeg-args';
import { EngineName } from '../../src/engines/engine';
import { JobName } from '../../src/jobs/job.types';
import { isDistributed, planRenderJobs, type RenderJobsInput } from '../../src/renders/render-jobs';

const target = {
  engine: EngineName.FfmpegComposite,
  renderKey: 'k9',
  run: '1a2b3c',
  project: 'acme',
  movie: 'intro',
  params: { name: 'Ada' },
  templateVersion: 'v7',
  storageId: 'store-1',
};
const ranges = (...bounds: number[]): FrameRange[] => bounds.slice(0, -1).map((from, i) => ({ from, to: bounds[i + 1] }));
const input = (over: Partial<RenderJobsInput>): RenderJobsInput => ({
  target,
  format: 'mp4',
  profile: { format: 'mp4', streamable: true },
  routingKey: 'gpu',
  parallel: 1,
  totalFrames: 90,
  fps: 30,
  ranges: [],
  ...over,
});
const LIVE = 'montage:live:k9:1a2b3c';
const PROGRESS = 'montage:progress:k9:1a2b3c';
const seg = (i: number) => `montage:seg:k9:1a2b3c:${i}`;

describe('isDistributed', () => {
  const two = ranges(0, 10, 20);
  it.each([
    ['mp4', 2, two, true],
    ['webm', 4, two, true],
    ['mp4', 1, two, false], // parallel 1
    ['mp4', 2, ranges(0, 20), false], // one range
    ['webm', 2, [], false],
    ['gif', 4, two, false], // not distributable
    ['png', 4, two, false],
    ['jpg', 4, two, false],
    ['webp', 4, two, false],
  ] as const)('%s, parallel %d, %j → %s', (format, parallel, r, expected) => {
    expect(isDistributed(format, parallel, [...r])).toBe(expected);
  });
});

describe('planRenderJobs: one RenderOutput job', () => {
  it('mp4 with parallel 1: one job on render.<routingKey>, id <key>-r<run>, watched on the run channel', () => {
    const profile = { format: 'mp4' as const, streamable: true };
    expect(planRenderJobs(input({ profile, ranges: ranges(0, 30, 60, 90) }))).toStrictEqual({
      kind: 'output',
      watch: { channel: LIVE, progressKey: PROGRESS, queue: 'render.gpu', jobId: 'k9-r1a2b3c' },
      job: {
        queue: 'render.gpu',
        jobId: 'k9-r1a2b3c',
        payload: { ...target, profile, channel: LIVE, progressKey: PROGRESS, totalFrames: 90 },
      },
    });
  });

  it('gif with parallel 4 and several ranges: still one output job, no frame', () => {
    const profile = { format: 'gif' as const };
    expect(planRenderJobs(input({ format: 'gif', profile, parallel: 4, ranges: ranges(0, 30, 60, 90) }))).toStrictEqual({
      kind: 'output',
      watch: { channel: LIVE, progressKey: PROGRESS, queue: 'render.gpu', jobId: 'k9-r1a2b3c' },
      job: { queue: 'render.gpu', jobId: 'k9-r1a2b3c', payload: { ...target, profile, channel: LIVE, progressKey: PROGRESS, totalFrames: 90 } },
    });
  });

  it('png with parallel 4: one output job that carries the frame (frame 0 too)', () => {
    const profile = { format: 'png' as const };
    for (const frame of [0, 45]) {
      expect(planRenderJobs(input({ format: 'png', profile, parallel: 4, frame, totalFrames: 1, ranges: ranges(0, 30, 60, 90) }))).toStrictEqual({
        kind: 'output',
        watch: { channel: LIVE, progressKey: PROGRESS, queue: 'render.gpu', jobId: 'k9-r1a2b3c' },
        job: { queue: 'render.gpu', jobId: 'k9-r1a2b3c', payload: { ...target, profile, channel: LIVE, progressKey: PROGRESS, totalFrames: 1, frame } },
      });
    }
  });

  it('mp4 with parallel 4 but a single range is not cut', () => {
    const jobs = planRenderJobs(input({ parallel: 4, ranges: ranges(0, 90) }));
    expect(jobs.kind).toBe('output');
  });

  it('another run of the same render has other ids and channels', () => {
    const jobs = planRenderJobs(input({ target: { ...target, run: '2ffffff' } }));
    expect(jobs.watch).toStrictEqual({ channel: 'montage:live:k9:2ffffff', progressKey: 'montage:progress:k9:2ffffff', queue: 'render.gpu', jobId: 'k9-r2ffffff' });
  });
});

describe('planRenderJobs: distributed', () => {
  it('mp4, parallel 2, 5 ranges: 2 chained lanes of fragmented-MP4 segments, and the assembly', () => {
    const r = ranges(0, 10, 30, 50, 70, 90);
    const profile = { format: 'mp4' as const, streamable: true };
    const segProfile = { format: 'mp4', streamable: true, videoOnly: true };
    const segment = (i: number, children?: unknown[]) => ({
      name: JobName.RenderSegment,
      queue: 'render.gpu',
      jobId: `k9-r1a2b3c-${r[i].from}-${r[i].to}`,
      payload: { ...target, profile: segProfile, channel: seg(i), progressKey: PROGRESS, range: r[i], index: i },
      priority: i + 1,
      children,
    });
    expect(planRenderJobs(input({ profile, parallel: 2, ranges: r }))).toStrictEqual({
      kind: 'distributed',
      watch: { channel: LIVE, progressKey: PROGRESS, queue: 'montage.assembly', jobId: 'k9-r1a2b3c' },
      // Segment i is the child of segment i + 2: a lane runs its segments first to last.
      lanes: [segment(4, [segment(2, [segment(0)])]), segment(3, [segment(1)])],
      assembly: {
        queue: 'montage.assembly',
        jobId: 'k9-r1a2b3c',
        payload: {
          ...target,
          profile: { format: 'mp4', streamable: true },
          channel: LIVE,
          progressKey: PROGRESS,
          format: 'mp4',
          totalFrames: 90,
          fps: 30,
          ranges: r,
          segments: r.map((range, i) => ({ channel: seg(i), queue: 'render.gpu', jobId: `k9-r1a2b3c-${range.from}-${range.to}` })),
          // The last segment of each lane: the root of its flow.
          laneRoots: ['k9-r1a2b3c-70-90', 'k9-r1a2b3c-50-70'],
        },
      },
    });
  });

  it('webm, parallel 4, 8 ranges: 4 lanes of 2 IVF segments each', () => {
    const r = ranges(0, 5, 15, 30, 45, 60, 70, 80, 90);
    const segProfile = { format: 'webm', streamable: true, videoOnly: true, container: 'ivf' };
    const segment = (i: number, children?: unknown[]) => ({
      name: JobName.RenderSegment,
      queue: 'render.gpu',
      jobId: `k9-r1a2b3c-${r[i].from}-${r[i].to}`,
      payload: { ...target, profile: segProfile, channel: seg(i), progressKey: PROGRESS, range: r[i], index: i },
      priority: i + 1,
      children,
    });
    const jobs = planRenderJobs(input({ format: 'webm', profile: { format: 'webm', streamable: true }, parallel: 4, ranges: r }));
    expect(jobs).toStrictEqual({
      kind: 'distributed',
      watch: { channel: LIVE, progressKey: PROGRESS, queue: 'montage.assembly', jobId: 'k9-r1a2b3c' },
      lanes: [segment(4, [segment(0)]), segment(5, [segment(1)]), segment(6, [segment(2)]), segment(7, [segment(3)])],
      assembly: {
        queue: 'montage.assembly',
        jobId: 'k9-r1a2b3c',
        payload: {
          ...target,
          profile: { format: 'webm', streamable: true },
          channel: LIVE,
          progressKey: PROGRESS,
          format: 'webm',
          totalFrames: 90,
          fps: 30,
          ranges: r,
          segments: r.map((range, i) => ({ channel: seg(i), queue: 'render.gpu', jobId: `k9-r1a2b3c-${range.from}-${range.to}` })),
          // The last segment of each lane: the root of its flow.
          laneRoots: ['k9-r1a2b3c-45-60', 'k9-r1a2b3c-60-70', 'k9-r1a2b3c-70-80', 'k9-r1a2b3c-80-90'],
        },
      },
    });
  });

  it('more lanes than ranges: one lane per range, each segment alone', () => {
    const r = ranges(0, 40, 90);
    const jobs = planRenderJobs(input({ format: 'webm', profile: { format: 'webm', streamable: true }, parallel: 4, ranges: r }));
    if (jobs.kind !== 'distributed') throw new Error('expected a distributed render');
    expect(jobs.lanes.map((lane) => [lane.jobId, lane.priority, lane.children])).toStrictEqual([
      ['k9-r1a2b3c-0-40', 1, undefined],
      ['k9-r1a2b3c-40-90', 2, undefined],
    ]);
  });

  it('every segment appears exactly once across the lanes, and the job ids are the same when planned again', () => {
    const r = ranges(0, 3, 9, 18, 27, 36, 45, 54, 63, 72, 81, 90);
    const plan = () => planRenderJobs(input({ parallel: 3, ranges: r }));
    const jobs = plan();
    if (jobs.kind !== 'distributed') throw new Error('expected a distributed render');
    const seen: number[] = [];
    const walk = (job: { payload: unknown; children?: Array<{ payload: unknown; children?: unknown[] }> }, lane: number) => {
      const index = (job.payload as { index: number }).index;
      expect(index % 3).toBe(lane);
      seen.push(index);
      for (const child of job.children ?? []) walk(child as never, lane);
    };
    jobs.lanes.forEach((root, lane) => walk(root as never, lane));
    expect(seen.sort((a, b) => a - b)).toEqual(r.map((_, i) => i));
    expect(plan()).toStrictEqual(jobs);
  });
});
