import type { FragmentKind } from '../formats/output-formats';

/**
 * Cuts a growing output into whole pieces as it is written, so each can be published on its
 * own: the first piece is the header (MP4 `ftyp`+`moov`, the WebM header up to its first
 * Cluster, the IVF file header), every later one a whole fragment (an MP4 `moof`+`mdat`, a
 * WebM Cluster, an IVF frame). Pieces are cut where the encoder put its fragment boundaries,
 * so two encodes of the same frames with the same settings are cut alike: piece n of a
 * retried render stands for the same frames as piece n of the attempt that died. Pure.
 */
export interface FragmentChunker {
  /** Feeds bytes; returns the pieces they completed. */
  push(data: Buffer): Buffer[];
  /** The writer is done: what is left (throws if the output stops in the middle of a piece). */
  end(): Buffer[];
}

export function fragmentChunker(kind: FragmentKind): FragmentChunker {
  switch (kind) {
    case 'mp4-fragments':
      return new Mp4Chunker();
    case 'webm-clusters':
      return new WebmChunker();
    case 'ivf-frames':
      return new IvfChunker();
  }
}

abstract class Buffered implements FragmentChunker {
  protected buf: Buffer = Buffer.alloc(0);

  push(data: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    const out: Buffer[] = [];
    for (let n = this.next(); n > 0; n = this.next()) {
      out.push(this.buf.subarray(0, n));
      this.buf = this.buf.subarray(n);
    }
    return out;
  }

  end(): Buffer[] {
    const rest = this.finish();
    this.buf = Buffer.alloc(0);
    return rest;
  }

  /** Length of the next whole piece at the start of the buffer, or 0 if it is not complete yet. */
  protected abstract next(): number;
  protected abstract finish(): Buffer[];
}

/** Fragmented MP4: `ftyp`+`moov` (+ anything before the first `moof`), then each `moof`…`mdat`. */
class Mp4Chunker extends Buffered {
  protected next(): number {
    let pos = 0;
    while (pos + 8 <= this.buf.length) {
      let size = this.buf.readUInt32BE(pos);
      const type = this.buf.toString('latin1', pos + 4, pos + 8);
      if (size === 1) {
        if (pos + 16 > this.buf.length) return 0;
        size = Number(this.buf.readBigUInt64BE(pos + 8));
      }
      if (size < 8) throw new Error(`malformed MP4 box ${JSON.stringify(type)} of ${size} bytes`);
      // The header ends where the first fragment begins; a fragment ends with its mdat.
      if (type === 'moof' && pos > 0) return pos;
      if (pos + size > this.buf.length) return 0;
      pos += size;
      // The header goes out as soon as its moov is whole (a viewer's first bytes); a fragment ends with its mdat.
      if (type === 'mdat' || type === 'moov') return pos;
    }
    return 0;
  }

  protected finish(): Buffer[] {
    if (this.buf.length === 0) return [];
    // Trailing boxes (an mfra index) are whole or the file is cut short.
    let pos = 0;
    while (pos + 8 <= this.buf.length) {
      const size = boxSize(this.buf, pos);
      if (size === undefined || size < 8) break;
      pos += size;
    }
    if (pos !== this.buf.length) throw new Error('the MP4 output ends in the middle of a box');
    return [this.buf];
  }
}

/** IVF: the 32-byte file header, then one piece per frame (12-byte header + frame). */
class IvfChunker extends Buffered {
  private headerDone = false;

  protected next(): number {
    if (!this.headerDone) {
      if (this.buf.length < 32) return 0;
      if (this.buf.toString('latin1', 0, 4) !== 'DKIF') throw new Error('not an IVF stream');
      const size = this.buf.readUInt16LE(6);
      if (size < 32) throw new Error(`IVF header size ${size} is invalid`);
      if (this.buf.length < size) return 0;
      this.headerDone = true;
      return size;
    }
    if (this.buf.length < 12) return 0;
    const n = 12 + this.buf.readUInt32LE(0);
    return this.buf.length >= n ? n : 0;
  }

  protected finish(): Buffer[] {
    if (this.buf.length) throw new Error('the IVF output ends in the middle of a frame');
    return [];
  }
}

const CLUSTER = 0x1f43b675;
const SEGMENT = 0x18538067;
const TRACKS = 0x1654ae6b;
/** Top-level elements of a Segment: where a Cluster of unknown size ends. */
const SEGMENT_CHILDREN = new Set([CLUSTER, 0x1c53bb6b /* Cues */, 0x1254c367 /* Tags */, 0x114d9b74 /* SeekHead */, 0x1549a966 /* Info */, 0x1654ae6b /* Tracks */, 0x1941a469 /* Attachments */, 0x1043a770 /* Chapters */]);

/** An EBML element header at `pos`: id, header length, data size (undefined: unknown), or undefined if incomplete. */
function ebmlHeader(buf: Buffer, pos: number): { id: number; header: number; size?: number } | undefined {
  if (pos >= buf.length) return undefined;
  const idLen = Math.clz32(buf[pos]) - 23; // 1 for 0x80…, 2 for 0x40…, …
  if (idLen < 1 || idLen > 4) throw new Error(`malformed EBML id at ${pos}`);
  if (pos + idLen >= buf.length) return undefined;
  let id = 0;
  for (let i = 0; i < idLen; i++) id = id * 256 + buf[pos + i];
  const first = buf[pos + idLen];
  const sizeLen = Math.clz32(first) - 23;
  if (sizeLen < 1 || sizeLen > 8) throw new Error(`malformed EBML size at ${pos + idLen}`);
  if (pos + idLen + sizeLen > buf.length) return undefined;
  let size = first & (0xff >> sizeLen);
  let allOnes = size === 0xff >> sizeLen;
  for (let i = 1; i < sizeLen; i++) {
    const b = buf[pos + idLen + i];
    allOnes &&= b === 0xff;
    size = size * 256 + b;
  }
  return { id, header: idLen + sizeLen, size: allOnes ? undefined : size };
}

/** WebM: the EBML header and the Segment's header elements up to the first Cluster, then each Cluster. */
class WebmChunker extends Buffered {
  protected next(): number {
    let pos = 0;
    while (true) {
      const el = ebmlHeader(this.buf, pos);
      if (!el) return 0;
      if (el.id === SEGMENT) {
        pos += el.header; // enter the Segment: its children follow
        continue;
      }
      if (el.id === CLUSTER) {
        if (pos > 0) return pos; // the header (or what came between clusters) ends here
        if (el.size !== undefined) return this.buf.length >= el.header + el.size ? el.header + el.size : 0;
        return this.unknownSizeCluster(el.header);
      }
      if (el.size === undefined) throw new Error(`EBML element ${el.id.toString(16)} of unknown size outside a Cluster`);
      if (pos + el.header + el.size > this.buf.length) return 0;
      pos += el.header + el.size;
      if (el.id === TRACKS) return pos; // the header goes out as soon as the tracks are known
    }
  }

  /** A live Cluster written with an unknown size ends where the next top-level element starts. */
  private unknownSizeCluster(start: number): number {
    let pos = start;
    while (true) {
      const el = ebmlHeader(this.buf, pos);
      if (!el) return 0;
      if (SEGMENT_CHILDREN.has(el.id)) return pos;
      if (el.size === undefined) throw new Error('EBML element of unknown size inside a Cluster');
      pos += el.header + el.size;
      if (pos > this.buf.length) return 0;
    }
  }

  protected finish(): Buffer[] {
    return this.buf.length ? [this.buf] : []; // the last Cluster (and Cues) of the file
  }
}

/** Frames in one piece of a video-only output: an MP4 fragment's `trun` samples, one per IVF frame. */
/** Frames in a whole file (a stored segment): its pieces, counted as a publisher would. Throws on a malformed one. */
export function framesInFile(kind: FragmentKind, file: Buffer): number {
  const chunker = fragmentChunker(kind);
  return [...chunker.push(file), ...chunker.end()].reduce((n, piece) => n + framesInPiece(kind, piece), 0);
}

export function framesInPiece(kind: FragmentKind, piece: Buffer): number {
  if (kind === 'ivf-frames') return piece.toString('latin1', 0, 4) === 'DKIF' ? 0 : 1;
  if (kind !== 'mp4-fragments') throw new Error(`frames are not counted in ${kind}`);
  let frames = 0;
  const boxes = (start: number, end: number, each: (type: string, start: number, header: number, size: number) => void) => {
    for (let pos = start; pos + 8 <= end; ) {
      const size = boxSize(piece, pos);
      if (size === undefined || size < 8) throw new Error('malformed MP4 box');
      each(piece.toString('latin1', pos + 4, pos + 8), pos, piece.readUInt32BE(pos) === 1 ? 16 : 8, size);
      pos += size;
    }
  };
  boxes(0, piece.length, (type, start, header, size) => {
    if (type !== 'moof') return;
    boxes(start + header, start + size, (t, s, h, z) => {
      if (t !== 'traf') return;
      boxes(s + h, s + z, (tt, ss, hh) => {
        if (tt === 'trun') frames += piece.readUInt32BE(ss + hh + 4);
      });
    });
  });
  return frames;
}

/** The size of the MP4 box at `pos` (its 64-bit size when the 32-bit one is 1); undefined if its header is cut. */
function boxSize(buf: Buffer, pos: number): number | undefined {
  const size = buf.readUInt32BE(pos);
  if (size !== 1) return size;
  return pos + 16 <= buf.length ? Number(buf.readBigUInt64BE(pos + 8)) : undefined;
}
