/**
 * Joins IVF segments (bare VP9 frames, each segment rendered on its own and starting at time
 * 0) into one continuous IVF stream as they arrive, without re-encoding: the first segment's
 * 32-byte header is kept, later ones dropped, and every frame's timestamp is shifted by its
 * segment's start. Pure: buffers in, buffers out. The joined stream is muxed into WebM.
 *
 * IVF: a header (`DKIF`, version, header size, fourcc, width, height, time base as
 * rate/scale, frame count), then per frame a 12-byte header (size, 64-bit pts) and the frame.
 */
export interface IvfHeader {
  fourcc: string;
  width: number;
  height: number;
  /** Time base = scale / rate seconds. */
  rate: number;
  scale: number;
  frames: number;
  headerSize: number;
}

const FRAME_HEADER = 12;

export function readIvfHeader(buf: Buffer): IvfHeader {
  if (buf.length < 32 || buf.toString('latin1', 0, 4) !== 'DKIF') throw new Error('not an IVF stream (no DKIF header)');
  const headerSize = buf.readUInt16LE(6);
  if (headerSize < 32 || headerSize > buf.length) throw new Error(`IVF header size ${headerSize} is invalid`);
  const header = {
    fourcc: buf.toString('latin1', 8, 12),
    width: buf.readUInt16LE(12),
    height: buf.readUInt16LE(14),
    rate: buf.readUInt32LE(16),
    scale: buf.readUInt32LE(20),
    frames: buf.readUInt32LE(24),
    headerSize,
  };
  if (header.rate === 0 || header.scale === 0) throw new Error('IVF time base is zero');
  return header;
}

/** Frames in an IVF stream, counted frame by frame (not the header's count). Throws if truncated. */
export function countIvfFrames(buf: Buffer): number {
  let frames = 0;
  for (let pos = readIvfHeader(buf).headerSize; pos < buf.length; frames++) {
    if (buf.length - pos < FRAME_HEADER) throw new Error(`truncated IVF frame header at ${pos}`);
    pos += FRAME_HEADER + buf.readUInt32LE(pos);
    if (pos > buf.length) throw new Error('the last IVF frame is truncated');
  }
  return frames;
}

export class IvfJoiner {
  private header?: IvfHeader;
  private lastPts = -1n;

  /** `totalFrames` goes into the joined header, so the muxer knows the whole length up front. */
  constructor(
    private readonly fps: number,
    private readonly totalFrames: number,
  ) {}

  /**
   * The bytes to append to the joined stream for the next segment, which starts at movie
   * frame `startFrame`. Segments must be pushed in order.
   */
  push(segment: Buffer, startFrame: number): Buffer {
    // A whole segment, or one piece of it as published: its header, or frames that follow one.
    const hasHeader = segment.length >= 4 && segment.toString('latin1', 0, 4) === 'DKIF';
    const out: Buffer[] = [];
    let pos = 0;
    if (hasHeader) {
      const header = readIvfHeader(segment);
      pos = header.headerSize;
      if (!this.header) {
        this.header = header;
        const first = Buffer.from(segment.subarray(0, header.headerSize));
        first.writeUInt32LE(this.totalFrames, 24);
        out.push(first);
      } else {
        const h = this.header;
        if (header.fourcc !== h.fourcc || header.width !== h.width || header.height !== h.height || header.rate * h.scale !== h.rate * header.scale) {
          throw new Error(
            `segments were encoded differently: ${header.fourcc} ${header.width}x${header.height} @${header.scale}/${header.rate} after ${h.fourcc} ${h.width}x${h.height} @${h.scale}/${h.rate}`,
          );
        }
      }
    } else if (!this.header) {
      throw new Error('not an IVF stream: frames came before any IVF header');
    }
    const { rate, scale } = this.header;
    const offset = BigInt(Math.round((startFrame * rate) / (scale * this.fps)));
    while (pos < segment.length) {
      if (segment.length - pos < FRAME_HEADER) throw new Error(`truncated IVF frame header at ${pos}`);
      const size = segment.readUInt32LE(pos);
      if (pos + FRAME_HEADER + size > segment.length) throw new Error(`IVF frame at ${pos} runs past the segment (${size} bytes)`);
      const frame = Buffer.from(segment.subarray(pos, pos + FRAME_HEADER + size));
      const pts = frame.readBigUInt64LE(4) + offset;
      // Overlapping segments would make the stream go back in time: a planning bug, not a video.
      if (pts <= this.lastPts) throw new Error(`IVF timestamps go back: ${pts} after ${this.lastPts} (segment from frame ${startFrame})`);
      this.lastPts = pts;
      frame.writeBigUInt64LE(pts, 4);
      out.push(frame);
      pos += FRAME_HEADER + size;
    }
    return Buffer.concat(out);
  }
}

/** What both joiners do: the next segment's bytes for the joined stream. */
export interface SegmentJoiner {
  push(segment: Buffer, startFrame: number): Buffer;
}
