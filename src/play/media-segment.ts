import { Fmp4Joiner, readBoxes } from '../streaming/fmp4-joiner';

/**
 * An HLS init segment from a stored play segment (pure): its `ftyp` and `moov`. Every
 * segment of a movie is encoded with the same settings, so any one's moov serves them all.
 * Throws when the file has no moov.
 */
export function initSegmentOf(segment: Buffer): Buffer {
  const boxes = readBoxes(segment).filter((b) => b.type === 'ftyp' || b.type === 'moov');
  if (!boxes.some((b) => b.type === 'moov')) throw new Error('no moov: not a fragmented MP4');
  return Buffer.concat(boxes.map((b) => segment.subarray(b.start, b.start + b.size)));
}

/**
 * An HLS media segment from a stored play segment starting at movie frame `startFrame`
 * (pure): its fragments only (no `ftyp`/`moov`, no index boxes), each `tfdt` shifted from the
 * segment's own time 0 to the movie's time. Sequence numbers restart per segment, which HLS allows.
 */
export function mediaSegmentOf(segment: Buffer, startFrame: number, fps: number): Buffer {
  const joined = new Fmp4Joiner(fps).push(segment, startFrame);
  const fragments = readBoxes(joined).filter((b) => b.type !== 'ftyp' && b.type !== 'moov');
  return Buffer.concat(fragments.map((b) => joined.subarray(b.start, b.start + b.size)));
}
