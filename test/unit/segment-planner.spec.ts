import { distributedPlanOptions, planSegments } from '../../src/streaming/segment-planner';

const covers = (ranges: Array<{ from: number; to: number }>, total: number) => {
  expect(ranges[0].from).toBe(0);
  expect(ranges[ranges.length - 1].to).toBe(total);
  for (let i = 1; i < ranges.length; i++) expect(ranges[i].from).toBe(ranges[i - 1].to);
};

describe('planSegments', () => {
  it('10 s at 30 fps for two nodes: a 1 s first segment, then four GOP-aligned pieces', () => {
    expect(planSegments(300, { fps: 30, parallel: 2 })).toEqual([
      { from: 0, to: 30 },
      { from: 30, to: 90 },
      { from: 90, to: 180 },
      { from: 180, to: 240 },
      { from: 240, to: 300 },
    ]);
  });

  it('one node: the short first segment, then the rest in one piece', () => {
    expect(planSegments(300, { fps: 30, parallel: 1 })).toEqual([
      { from: 0, to: 30 },
      { from: 30, to: 300 },
    ]);
  });

  it('a movie shorter than the first segment is one segment', () => {
    expect(planSegments(20, { fps: 30, parallel: 4 })).toEqual([{ from: 0, to: 20 }]);
  });

  it('the last segment takes a partial GOP; every other boundary is on a GOP', () => {
    const ranges = planSegments(367, { fps: 30, parallel: 3 });
    covers(ranges, 367);
    for (const r of ranges.slice(1)) expect(r.from % 30).toBe(0);
  });

  it.each([
    [1, 24, 1],
    [1000, 25, 8],
    [12345, 60, 16],
    [90, 30, 16],
  ])('%d frames at %d fps, parallel %d: contiguous, complete, never empty', (total, fps, parallel) => {
    const ranges = planSegments(total, { fps, parallel });
    covers(ranges, total);
    for (const r of ranges) expect(r.to).toBeGreaterThan(r.from);
    expect(ranges.length).toBeLessThanOrEqual(1 + parallel * 2);
  });

  it('refuses nonsense', () => {
    expect(() => planSegments(0, { fps: 30, parallel: 1 })).toThrow();
    expect(() => planSegments(10, { fps: 30, parallel: 0 })).toThrow();
  });
});

describe('distributedPlanOptions', () => {
  it('a tenth-of-a-second first segment, then one piece per node', () => {
    expect(planSegments(300, distributedPlanOptions(30, 2))).toEqual([
      { from: 0, to: 3 },
      { from: 3, to: 153 },
      { from: 153, to: 300 },
    ]);
    expect(planSegments(69, distributedPlanOptions(30, 3))).toEqual([
      { from: 0, to: 3 },
      { from: 3, to: 24 },
      { from: 24, to: 48 },
      { from: 48, to: 69 },
    ]);
    expect(planSegments(2, distributedPlanOptions(30, 2))).toEqual([{ from: 0, to: 2 }]);
    // two pieces per lane: the early part of the movie lands sooner
    expect(planSegments(300, distributedPlanOptions(30, 2, 2))).toEqual([
      { from: 0, to: 3 },
      { from: 3, to: 78 },
      { from: 78, to: 153 },
      { from: 153, to: 225 },
      { from: 225, to: 300 },
    ]);
  });
});
