import { checkAssembly, planRenderFlow } from '../../src/renders/render-flow';
import { ASSEMBLY_QUEUE, type FlowJob, JobName, type RenderSegmentResult } from '../../src/jobs/job.types';

const ranges = [
  { from: 0, to: 3 },
  { from: 3, to: 24 },
  { from: 24, to: 48 },
  { from: 48, to: 69 },
];
const flowOf = (parallel: number) =>
  planRenderFlow({
    renderKey: 'k',
    run: '2',
    routingKey: 'gpu',
    parallel,
    totalFrames: 69,
    ranges,
    segment: (i) => ({ renderKey: 'k', project: 'p', movie: 'm', params: {}, profile: { format: 'mp4' }, range: ranges[i], segment: `s${i}` }),
  });

/** Each lane from its first segment (deepest) to its last (a child of the parent). */
function lanes(root: FlowJob): string[][] {
  return (root.children ?? []).map((tail) => {
    const lane: string[] = [];
    for (let job: FlowJob | undefined = tail; job; job = job.children?.[0]) lane.unshift(job.jobId);
    return lane;
  });
}

describe('planRenderFlow', () => {
  it('the assembly job is the parent; segments run in `parallel` lanes, one after the other in each', () => {
    const { root, parentId, segmentIds } = flowOf(2);
    expect(root).toMatchObject({ name: JobName.AssembleRender, queue: ASSEMBLY_QUEUE, jobId: 'k-a2', payload: { renderKey: 'k', totalFrames: 69, segments: 4 } });
    expect(parentId).toBe('k-a2');
    expect(segmentIds).toEqual(['k-a2-0-3', 'k-a2-3-24', 'k-a2-24-48', 'k-a2-48-69']);
    expect(lanes(root)).toEqual([
      ['k-a2-0-3', 'k-a2-24-48'],
      ['k-a2-3-24', 'k-a2-48-69'],
    ]);
    const tail = root.children![0];
    expect(tail).toMatchObject({ name: JobName.RenderSegment, queue: 'render.gpu', priority: 3, payload: { range: { from: 24, to: 48 }, segment: 's2' } });
    expect(root.children![1].children![0]).toMatchObject({ jobId: 'k-a2-3-24', priority: 2 }); // the head of lane 2
  });

  it('never more lanes than segments; parallel 1 is one chain', () => {
    expect(lanes(flowOf(8).root)).toEqual([['k-a2-0-3'], ['k-a2-3-24'], ['k-a2-24-48'], ['k-a2-48-69']]);
    expect(lanes(flowOf(1).root)).toEqual([['k-a2-0-3', 'k-a2-3-24', 'k-a2-24-48', 'k-a2-48-69']]);
  });
});

describe('checkAssembly', () => {
  const lane = (laneFrames: number, laneSegments: number) => ({ laneFrames, laneSegments }) as RenderSegmentResult;
  const payload = { renderKey: 'k', totalFrames: 69, segments: 4 };

  it('passes when the lanes hold every frame and segment', () => {
    expect(checkAssembly(payload, [lane(27, 2), lane(42, 2)])).toEqual({ frames: 69, segments: 4 });
  });

  it('fails, saying what is missing, when they do not', () => {
    expect(() => checkAssembly(payload, [lane(27, 2)])).toThrow('render k: segments hold 27 frames in 2 segments, expected 69 in 4');
    expect(() => checkAssembly(payload, [lane(27, 2), lane(41, 2)])).toThrow(/68 frames/);
  });
});
