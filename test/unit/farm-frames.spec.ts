import { MontageError } from '../../src/common/errors';
import { chunkFrames, farmChunkJobId, parseFarmChunkJobId } from '../../src/farm/farm-chunks';
import { MAX_FRAME, parseFramesSpec, sceneFramesSpec } from '../../src/farm/frames-spec';

function refusal(spec: unknown): MontageError {
  try {
    parseFramesSpec(spec);
  } catch (err) {
    return err as MontageError;
  }
  throw new Error(`expected ${JSON.stringify(spec)} to be refused`);
}

describe('parseFramesSpec', () => {
  it("reads Fox's a-b[step] ranges", () => {
    expect(parseFramesSpec('1-10[1]')).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(parseFramesSpec('1073-1073[1]')).toEqual([1073]);
    expect(parseFramesSpec('1-100[5]')).toEqual([1, 6, 11, 16, 21, 26, 31, 36, 41, 46, 51, 56, 61, 66, 71, 76, 81, 86, 91, 96]);
    expect(parseFramesSpec('0-4[2]')).toEqual([0, 2, 4]);
  });

  it('reads lists and mixes, sorted and each frame once', () => {
    expect(parseFramesSpec('1,5,10-20')).toEqual([1, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    expect(parseFramesSpec('1-9[2],20')).toEqual([1, 3, 5, 7, 9, 20]);
    expect(parseFramesSpec('20, 3-5, 4, 3')).toEqual([3, 4, 5, 20]);
    expect(parseFramesSpec(`${MAX_FRAME}`)).toEqual([MAX_FRAME]);
  });

  it('names the bad part', () => {
    expect(refusal('10-1').message).toBe("frames: '10-1' ends before it starts");
    expect(refusal('10-1').details).toEqual([{ field: 'frames', message: "'10-1' ends before it starts" }]);
    expect(refusal('1,x,3').message).toBe("frames: 'x' is not a frame, a range a-b or a range with a step a-b[step]");
    expect(refusal('1-5[0]').message).toBe("frames: '1-5[0]' has a step below 1");
    expect(refusal('1,,3').message).toMatch(/empty entry/);
    expect(refusal('').message).toBe('frames: is empty');
    expect(refusal('-5').message).toMatch(/'-5' is not a frame/);
    expect(refusal(`1-${MAX_FRAME + 1}`).message).toMatch(/past the last frame Blender renders \(1048574\)/);
    expect(refusal(12).message).toMatch(/must be a string/);
    expect(refusal({ $gt: 1 }).message).toMatch(/must be a string/);
  });

  it('caps the spec and the frames it names, and never echoes control characters', () => {
    expect(refusal('1,'.repeat(600)).message).toBe('frames: is longer than 1000 characters');
    expect(refusal('0-1048574').message).toBe('frames: names more than 10000 frames');
    expect(refusal('0-9999,10000-19999').message).toBe('frames: names more than 10000 frames');
    expect(refusal('1-10000,20000').message).toBe('frames: names more than 10000 frames');
    expect(parseFramesSpec('0-9999')).toHaveLength(10_000);
    expect(refusal('1\u0000-2').message).toBe("frames: '1?-2' is not a frame, a range a-b or a range with a step a-b[step]");
    expect(refusal('../../etc').message).not.toContain('\u0000');
  });

  it("writes a scene's own range in the same syntax", () => {
    expect(sceneFramesSpec(1, 250, 1)).toBe('1-250[1]');
    expect(parseFramesSpec(sceneFramesSpec(1, 10, 3))).toEqual([1, 4, 7, 10]);
  });
});

describe('chunkFrames', () => {
  const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

  it('cuts the list into chunks of at most chunkFrames entries, sizes within one of each other', () => {
    expect(chunkFrames(range(8), 4)).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7, 8],
    ]);
    expect(chunkFrames(range(10), 4)).toEqual([
      [1, 2, 3, 4],
      [5, 6, 7],
      [8, 9, 10],
    ]);
    expect(chunkFrames([1, 5, 9, 100], 3)).toEqual([[1, 5], [9, 100]]);
    expect(chunkFrames([], 4)).toEqual([]);
  });

  it('makes at least `parallel` chunks when there are frames enough', () => {
    expect(chunkFrames(range(8), 4, 4)).toEqual([[1, 2], [3, 4], [5, 6], [7, 8]]);
    expect(chunkFrames(range(3), 4, 8)).toEqual([[1], [2], [3]]);
    expect(chunkFrames(range(24), 4, 2)).toHaveLength(6);
  });

  it('names chunk jobs deterministically', () => {
    expect(farmChunkJobId('job_abc', 3, 1)).toBe('farm-job_abc-c3-a1');
    expect(parseFarmChunkJobId('farm-job_a-b-c12-a2')).toEqual({ job: 'job_a-b', index: 12, attempt: 2 });
    expect(parseFarmChunkJobId('render-x')).toBeUndefined();
  });
});
