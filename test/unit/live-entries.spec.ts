import { liveChannel, PieceSequence, progressKey, segmentChannel } from '../../src/streaming/live-entries';

/** Which of `entries` the sequence takes, in order (as `attempt:seq`). */
function taken(sequence: PieceSequence, entries: Array<[attempt: number, seq: number]>): string[] {
  return entries.filter(([attempt, seq]) => sequence.accept({ attempt, seq })).map(([attempt, seq]) => `${attempt}:${seq}`);
}

describe('PieceSequence', () => {
  it('takes the pieces of one attempt in order', () => {
    const sequence = new PieceSequence();
    expect(sequence.taken).toBe(0);
    expect(taken(sequence, [[1, 0], [1, 1], [1, 2], [1, 3]])).toEqual(['1:0', '1:1', '1:2', '1:3']);
    expect(sequence.taken).toBe(4);
  });

  it('skips the copies a retried attempt publishes again from piece 0, and takes the rest from it', () => {
    const sequence = new PieceSequence();
    expect(taken(sequence, [[1, 0], [1, 1], [1, 2]])).toEqual(['1:0', '1:1', '1:2']);
    expect(taken(sequence, [[2, 0], [2, 1], [2, 2], [2, 3], [2, 4]])).toEqual(['2:3', '2:4']);
    expect(sequence.taken).toBe(5);
  });

  it('a retry that died before publishing anything new, then a third attempt', () => {
    const sequence = new PieceSequence();
    expect(taken(sequence, [[1, 0], [1, 1], [2, 0], [3, 0], [3, 1], [3, 2]])).toEqual(['1:0', '1:1', '3:2']);
    expect(sequence.taken).toBe(3);
  });

  it('ignores pieces of an older attempt once a newer one was seen (a node presumed dead that still writes)', () => {
    const sequence = new PieceSequence();
    expect(taken(sequence, [[1, 0], [2, 0], [2, 1], [1, 1], [1, 2], [1, 3], [2, 2]])).toEqual(['1:0', '2:1', '2:2']);
    expect(sequence.taken).toBe(3);
    // Even a piece that would be next is not taken from the old attempt.
    expect(sequence.accept({ attempt: 1, seq: 3 })).toBe(false);
    expect(sequence.taken).toBe(3);
  });

  it('a first attempt numbered above 1 (the first attempts published nothing) starts at piece 0', () => {
    const sequence = new PieceSequence();
    expect(taken(sequence, [[3, 0], [3, 1]])).toEqual(['3:0', '3:1']);
  });

  it('throws on a gap: pieces were lost', () => {
    const sequence = new PieceSequence();
    expect(taken(sequence, [[1, 0], [1, 1]])).toEqual(['1:0', '1:1']);
    expect(() => sequence.accept({ attempt: 1, seq: 3 })).toThrow('piece 3 of attempt 1 came before piece 2: the channel lost pieces');
    expect(sequence.taken).toBe(2);
  });

  it('throws when the channel starts after piece 0, and when a retry jumps ahead of what was taken', () => {
    expect(() => new PieceSequence().accept({ attempt: 1, seq: 1 })).toThrow('piece 1 of attempt 1 came before piece 0: the channel lost pieces');
    const sequence = new PieceSequence();
    expect(taken(sequence, [[1, 0], [2, 0]])).toEqual(['1:0']);
    expect(() => sequence.accept({ attempt: 2, seq: 2 })).toThrow('piece 2 of attempt 2 came before piece 1: the channel lost pieces');
  });
});

describe('channel names', () => {
  it('one live channel and one progress hash per run, one channel per segment', () => {
    expect(liveChannel('k1', '1abc')).toBe('montage:live:k1:1abc');
    expect(segmentChannel('k1', '1abc', 3)).toBe('montage:seg:k1:1abc:3');
    expect(progressKey('k1', '1abc')).toBe('montage:progress:k1:1abc');
  });
});
