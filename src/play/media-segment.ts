import { type Box, Fmp4Joiner, readBoxes, trackTimescales } from '../streaming/fmp4-joiner';

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

/** One fragment (moof + mdat) of a fragmented MP4: where it is and how long it plays. */
export interface FragmentIndexEntry {
  offset: number;
  size: number;
  /** In the track's timescale. */
  duration: number;
}

/**
 * Where the init (ftyp + moov) ends and where each fragment lies, with its duration (pure): what
 * an HLS playlist of byte ranges into one fragmented file needs. One track (play mode's sound).
 */
export function fragmentIndex(file: Buffer): { initSize: number; timescale: number; fragments: FragmentIndexEntry[] } {
  const boxes = readBoxes(file);
  const moov = boxes.find((b) => b.type === 'moov');
  if (!moov) throw new Error('no moov: not a fragmented MP4');
  const timescale = [...trackTimescales(file, moov).values()][0];
  if (!timescale) throw new Error('no track in the moov');
  const trex = findPath(file, moov, ['mvex', 'trex']);
  const trexDuration = trex ? file.readUInt32BE(trex.start + trex.headerSize + 12) : 0;
  const fragments: FragmentIndexEntry[] = [];
  for (let i = 0; i < boxes.length; i++) {
    const moof = boxes[i];
    if (moof.type !== 'moof') continue;
    const mdat = boxes[i + 1];
    if (mdat?.type !== 'mdat') throw new Error(`the moof at ${moof.start} is not followed by its mdat`);
    fragments.push({ offset: moof.start, size: mdat.start + mdat.size - moof.start, duration: fragmentDuration(file, moof, trexDuration) });
  }
  return { initSize: moov.start + moov.size, timescale, fragments };
}

function findPath(buf: Buffer, parent: Box, path: string[]): Box | undefined {
  let at: Box | undefined = parent;
  for (const type of path) {
    at = at && readBoxes(buf, at.start + at.headerSize, at.start + at.size).find((b) => b.type === type);
  }
  return at;
}

/** The sum of a fragment's sample durations: per sample in the trun, or the tfhd's default, or the trex's. */
function fragmentDuration(buf: Buffer, moof: Box, trexDuration: number): number {
  const traf = findPath(buf, moof, ['traf']);
  if (!traf) return 0;
  const inner = readBoxes(buf, traf.start + traf.headerSize, traf.start + traf.size);
  const tfhd = inner.find((b) => b.type === 'tfhd');
  let defaultDuration = trexDuration;
  if (tfhd) {
    const flags = buf.readUInt32BE(tfhd.start + tfhd.headerSize) & 0xffffff;
    let at = tfhd.start + tfhd.headerSize + 8; // version/flags, track_ID
    if (flags & 0x1) at += 8;
    if (flags & 0x2) at += 4;
    if (flags & 0x8) defaultDuration = buf.readUInt32BE(at);
  }
  let total = 0;
  for (const trun of inner.filter((b) => b.type === 'trun')) {
    const flags = buf.readUInt32BE(trun.start + trun.headerSize) & 0xffffff;
    const count = buf.readUInt32BE(trun.start + trun.headerSize + 4);
    let at = trun.start + trun.headerSize + 8;
    if (flags & 0x1) at += 4;
    if (flags & 0x4) at += 4;
    if (!(flags & 0x100)) {
      total += count * defaultDuration;
      continue;
    }
    const stride = 4 * [0x100, 0x200, 0x400, 0x800].filter((f) => flags & f).length;
    for (let s = 0; s < count; s++) total += buf.readUInt32BE(at + s * stride);
  }
  return total;
}
