/**
 * Joins fragmented-MP4 segments (each rendered on its own, each starting at time 0) into one
 * continuous fragmented MP4, as they arrive, without re-encoding: the first segment's
 * `ftyp`/`moov` are kept, later ones dropped; each fragment's `tfdt` (decode time) is shifted
 * by its segment's start and each `mfhd` sequence number continues the count. `mfra` index
 * boxes are dropped (their offsets would be wrong). Pure: buffers in, buffers out.
 *
 * Needs ffmpeg's `-movflags frag_keyframe+empty_moov+default_base_moof`: trun offsets are
 * relative to their own moof, so fragments can move without rewriting them.
 */
export interface Box {
  type: string;
  start: number;
  size: number;
  headerSize: number;
}

/** Top-level boxes of `buf[start, end)`. Throws on a truncated or malformed box. */
export function readBoxes(buf: Buffer, start = 0, end = buf.length): Box[] {
  const out: Box[] = [];
  let pos = start;
  while (pos < end) {
    if (end - pos < 8) throw new Error(`truncated box header at ${pos}`);
    let size = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    let headerSize = 8;
    if (size === 1) {
      if (end - pos < 16) throw new Error(`truncated large box header at ${pos}`);
      size = Number(buf.readBigUInt64BE(pos + 8));
      headerSize = 16;
    } else if (size === 0) {
      size = end - pos;
    }
    if (size < headerSize || pos + size > end) throw new Error(`box ${type} at ${pos} runs past its container (${size} bytes)`);
    out.push({ type, start: pos, size, headerSize });
    pos += size;
  }
  return out;
}

function child(buf: Buffer, parent: Box, type: string, skip = 0): Box | undefined {
  return readBoxes(buf, parent.start + parent.headerSize + skip, parent.start + parent.size).find((b) => b.type === type);
}

function children(buf: Buffer, parent: Box, type: string): Box[] {
  return readBoxes(buf, parent.start + parent.headerSize, parent.start + parent.size).filter((b) => b.type === type);
}

/** track_ID → media timescale, from a `moov`. */
export function trackTimescales(buf: Buffer, moov: Box): Map<number, number> {
  const scales = new Map<number, number>();
  for (const trak of children(buf, moov, 'trak')) {
    const tkhd = child(buf, trak, 'tkhd');
    const mdia = child(buf, trak, 'mdia');
    const mdhd = mdia && child(buf, mdia, 'mdhd');
    if (!tkhd || !mdhd) continue;
    const tkhdV1 = buf[tkhd.start + tkhd.headerSize] === 1;
    const trackId = buf.readUInt32BE(tkhd.start + tkhd.headerSize + 4 + (tkhdV1 ? 16 : 8));
    const mdhdV1 = buf[mdhd.start + mdhd.headerSize] === 1;
    const timescale = buf.readUInt32BE(mdhd.start + mdhd.headerSize + 4 + (mdhdV1 ? 16 : 8));
    scales.set(trackId, timescale);
  }
  return scales;
}

/**
 * Samples in a fragmented MP4 (the sum of every fragment's `trun` sample count): a render
 * node's check that a segment holds all its frames, without running ffprobe. Throws on a
 * malformed or truncated file, or one with no `moov`.
 */
export function countFragmentedSamples(buf: Buffer): number {
  let samples = 0;
  let moov = false;
  for (const box of readBoxes(buf)) {
    if (box.type === 'moov') moov = true;
    if (box.type !== 'moof') continue;
    for (const traf of children(buf, box, 'traf')) {
      for (const trun of children(buf, traf, 'trun')) samples += buf.readUInt32BE(trun.start + trun.headerSize + 4);
    }
  }
  if (!moov) throw new Error('no moov: not a fragmented MP4 from the start');
  return samples;
}

export class Fmp4Joiner {
  private timescales?: Map<number, number>;
  private sequence = 0;
  private started = false;

  constructor(private readonly fps: number) {}

  /**
   * The bytes to append to the joined stream for the next segment, which starts at movie
   * frame `startFrame`. Segments must be pushed in order.
   */
  push(segment: Buffer, startFrame: number): Buffer {
    const out: Buffer[] = [];
    for (const box of readBoxes(segment)) {
      const bytes = segment.subarray(box.start, box.start + box.size);
      switch (box.type) {
        case 'ftyp':
        case 'moov':
          if (box.type === 'moov') {
            const scales = trackTimescales(segment, box);
            if (!this.timescales) this.timescales = scales;
            else if ([...scales].some(([id, ts]) => this.timescales!.get(id) !== ts)) {
              throw new Error('segments were encoded with different track time scales');
            }
          }
          if (!this.started) out.push(Buffer.from(bytes)); // the first segment's init boxes serve all
          break;
        case 'moof':
          out.push(this.shiftFragment(segment, box, startFrame));
          break;
        case 'mfra':
        case 'sidx':
          break; // indexes of the segment alone: wrong once joined
        default:
          out.push(Buffer.from(bytes));
      }
    }
    this.started = true;
    return Buffer.concat(out);
  }

  private shiftFragment(segment: Buffer, moof: Box, startFrame: number): Buffer {
    if (!this.timescales) throw new Error('a fragment came before the moov');
    const copy = Buffer.from(segment.subarray(moof.start, moof.start + moof.size));
    const local: Box = { ...moof, start: 0 };
    const mfhd = child(copy, local, 'mfhd');
    if (mfhd) copy.writeUInt32BE(++this.sequence, mfhd.start + mfhd.headerSize + 4);
    for (const traf of children(copy, local, 'traf')) {
      const tfhd = child(copy, traf, 'tfhd');
      const tfdt = child(copy, traf, 'tfdt');
      if (!tfhd || !tfdt) continue;
      const trackId = copy.readUInt32BE(tfhd.start + tfhd.headerSize + 4);
      const timescale = this.timescales.get(trackId);
      if (timescale === undefined) throw new Error(`fragment of unknown track ${trackId}`);
      const offset = BigInt(Math.round((startFrame * timescale) / this.fps));
      const at = tfdt.start + tfdt.headerSize + 4;
      if (copy[tfdt.start + tfdt.headerSize] === 1) copy.writeBigUInt64BE(copy.readBigUInt64BE(at) + offset, at);
      else {
        const shifted = BigInt(copy.readUInt32BE(at)) + offset;
        if (shifted > 0xffffffffn) throw new Error('tfdt version 0 overflows: the movie is too long for 32-bit decode times');
        copy.writeUInt32BE(Number(shifted), at);
      }
    }
    return copy;
  }
}
