import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { FragmentKind } from '../../src/formats/output-formats';
import { fragmentChunker, framesInPiece } from '../../src/streaming/fragment-chunker';

// ---------------------------------------------------------------------------------------------
// Feeding a chunker.

/** mulberry32: a small seeded PRNG, so a failing split can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every piece out of a chunker fed `input` cut at the given chunk sizes (the last chunk takes the rest). */
function chunk(kind: FragmentKind, input: Buffer, sizes: Iterable<number>): Buffer[] {
  const chunker = fragmentChunker(kind);
  const out: Buffer[] = [];
  let pos = 0;
  for (const size of sizes) {
    if (pos >= input.length) break;
    // A copy: the chunker must not depend on the caller keeping its buffers.
    out.push(...chunker.push(Buffer.from(input.subarray(pos, pos + size))));
    pos += size;
  }
  if (pos < input.length) out.push(...chunker.push(input.subarray(pos)));
  out.push(...chunker.end());
  return out;
}

function* ones(): Generator<number> {
  for (;;) yield 1;
}

function* randomSizes(seed: number, max: number): Generator<number> {
  const next = prng(seed);
  for (;;) yield 1 + Math.floor(next() * max);
}

/** The ways a writer may hand its output over. */
function splits(input: Buffer): Array<[string, Iterable<number>]> {
  return [
    ['all at once', [input.length]],
    ['byte by byte', ones()],
    ['in two halves', [Math.floor(input.length / 2)]],
    ...[1, 2, 3, 4, 5].map((seed): [string, Iterable<number>] => [`random chunks up to 37 bytes (seed ${seed})`, randomSizes(seed, 37)]),
    ...[6, 7, 8].map((seed): [string, Iterable<number>] => [`random chunks up to 4096 bytes (seed ${seed})`, randomSizes(seed, 4096)]),
  ];
}

const hex = (pieces: Buffer[]) => pieces.map((p) => p.toString('hex'));

function expectSamePiecesEverySplit(kind: FragmentKind, input: Buffer, expected: Buffer[]): void {
  expect(Buffer.concat(expected).equals(input)).toBe(true); // the test's own expectation is the input, cut
  for (const [how, sizes] of splits(input)) {
    const pieces = chunk(kind, input, sizes);
    expect({ how, pieces: hex(pieces) }).toEqual({ how, pieces: hex(expected) });
  }
}

// ---------------------------------------------------------------------------------------------
// Synthetic MP4.

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const box = (type: string, ...payload: Buffer[]) => {
  const body = Buffer.concat(payload);
  return Buffer.concat([u32(8 + body.length), Buffer.from(type, 'latin1'), body]);
};
/** A box with a 64-bit size (size field 1, then the largesize). */
const largeBox = (type: string, ...payload: Buffer[]) => {
  const body = Buffer.concat(payload);
  return Buffer.concat([u32(1), Buffer.from(type, 'latin1'), u64(16 + body.length), body]);
};
const fullBox = (type: string, flags: number, ...payload: Buffer[]) => box(type, u32(flags & 0xffffff), ...payload);

const ftyp = box('ftyp', Buffer.from('isom', 'latin1'), u32(0x200), Buffer.from('isomiso6mp41', 'latin1'));
const moov = box('moov', fullBox('mvhd', 0, Buffer.alloc(96, 1)), box('trak', fullBox('tkhd', 3, Buffer.alloc(80, 2))), box('mvex', fullBox('trex', 0, Buffer.alloc(20))));

/** One fragment: moof(mfhd, traf(tfhd, tfdt, trun with `samples` entries)) + mdat. */
function mp4Fragment(seq: number, samples: number, mdatBytes: number, options: { largeMdat?: boolean } = {}): Buffer {
  const sizes = Array.from({ length: samples }, (_, i) => u32(100 + i));
  const trun = fullBox('trun', 0x000200 /* sample sizes present */, u32(samples), ...sizes);
  const moof = box('moof', fullBox('mfhd', 0, u32(seq)), box('traf', fullBox('tfhd', 0x020000, u32(1)), fullBox('tfdt', 0, u32(seq * 1000)), trun));
  const payload = Buffer.alloc(mdatBytes);
  for (let i = 0; i < mdatBytes; i++) payload[i] = (i * 7 + seq) & 0xff;
  return Buffer.concat([moof, options.largeMdat ? largeBox('mdat', payload) : box('mdat', payload)]);
}

const mp4Header = Buffer.concat([ftyp, moov]);
const mp4Fragments = [mp4Fragment(1, 30, 700), mp4Fragment(2, 30, 1500, { largeMdat: true }), mp4Fragment(3, 17, 5), mp4Fragment(4, 1, 0)];
const mp4Input = Buffer.concat([mp4Header, ...mp4Fragments]);

// ---------------------------------------------------------------------------------------------
// Synthetic WebM.

const idBytes = (id: number) => {
  const out: number[] = [];
  for (let v = id; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Buffer.from(out);
};
/** An EBML size of `length` bytes (1..8). */
const vint = (size: number, length: number) => {
  const b = Buffer.alloc(length);
  let v = size;
  for (let i = length - 1; i >= 0; i--) {
    b[i] = v & 0xff;
    v = Math.floor(v / 256);
  }
  b[0] |= 0x80 >> (length - 1);
  return b;
};
const UNKNOWN_8 = Buffer.from('01ffffffffffffff', 'hex');
const UNKNOWN_1 = Buffer.from('ff', 'hex');
const el = (id: number, payload: Buffer | Buffer[], sizeLength = 4) => {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.concat(payload);
  return Buffer.concat([idBytes(id), vint(body.length, sizeLength), body]);
};
const uint = (id: number, n: number) => el(id, Buffer.from([n >> 8, n & 0xff]), 1);

const CLUSTER_ID = Buffer.from('1f43b675', 'hex');
const ebmlHead = el(0x1a45dfa3, [uint(0x4286, 1), uint(0x42f7, 1), el(0x4282, Buffer.from('webm'), 1)], 1);
const info = el(0x1549a966, [el(0x2ad7b1, Buffer.from([0x0f, 0x42, 0x40]), 1), el(0x4489, Buffer.alloc(4), 1)], 8);
const tracks = el(0x1654ae6b, [el(0xae, [uint(0xd7, 1), uint(0x73c5, 1), uint(0x83, 1), el(0x86, Buffer.from('V_VP9'), 1)], 2)], 2);
const webmHeader = Buffer.concat([ebmlHead, idBytes(0x18538067), UNKNOWN_8, info, tracks]);

function simpleBlock(n: number, bytes: number): Buffer {
  const frame = Buffer.alloc(bytes, n & 0xff);
  return el(0xa3, [Buffer.from([0x81, 0x00, n & 0xff, n === 0 ? 0x80 : 0x00]), frame], bytes > 100 ? 2 : 1);
}
const clusterChildren = (timecode: number, blocks: number, bytes: number) => [uint(0xe7, timecode), ...Array.from({ length: blocks }, (_, i) => simpleBlock(i, bytes))];
const knownCluster = (timecode: number, blocks: number, bytes: number, sizeLength = 4) => el(0x1f43b675, clusterChildren(timecode, blocks, bytes), sizeLength);
const unknownCluster = (timecode: number, blocks: number, bytes: number, unknown = UNKNOWN_8) =>
  Buffer.concat([CLUSTER_ID, unknown, ...clusterChildren(timecode, blocks, bytes)]);
const cues = el(0x1c53bb6b, [el(0xbb, [uint(0xb3, 0), el(0xb7, [uint(0xf7, 1), uint(0xf1, 40)], 1)], 1)], 2);

const webmClusters = [
  knownCluster(0, 3, 50),
  unknownCluster(1000, 4, 300),
  knownCluster(2000, 2, 20, 8),
  unknownCluster(3000, 2, 9, UNKNOWN_1),
  unknownCluster(4000, 5, 120), // the last cluster: ends with the file
];
const webmInput = Buffer.concat([webmHeader, ...webmClusters]);

// ---------------------------------------------------------------------------------------------
// Synthetic IVF.

function ivfHeader(frames: number): Buffer {
  const b = Buffer.alloc(32);
  b.write('DKIF', 0, 'latin1');
  b.writeUInt16LE(0, 4);
  b.writeUInt16LE(32, 6);
  b.write('VP90', 8, 'latin1');
  b.writeUInt16LE(160, 12);
  b.writeUInt16LE(120, 14);
  b.writeUInt32LE(30, 16);
  b.writeUInt32LE(1, 20);
  b.writeUInt32LE(frames, 24);
  return b;
}
function ivfFrame(pts: number, bytes: number): Buffer {
  const b = Buffer.alloc(12 + bytes, (pts * 13) & 0xff);
  b.writeUInt32LE(bytes, 0);
  b.writeBigUInt64LE(BigInt(pts), 4);
  return b;
}
const ivfFrames = [ivfFrame(0, 500), ivfFrame(1, 3), ivfFrame(2, 0), ivfFrame(3, 12), ivfFrame(4, 2000), ivfFrame(5, 1)];
const ivfInput = Buffer.concat([ivfHeader(ivfFrames.length), ...ivfFrames]);

// ---------------------------------------------------------------------------------------------

describe('fragmentChunker on synthetic MP4', () => {
  it('cuts ftyp+moov, then each moof+mdat (a 64-bit largesize mdat too), whatever way the input is split', () => {
    expectSamePiecesEverySplit('mp4-fragments', mp4Input, [mp4Header, ...mp4Fragments]);
  });

  it('keeps boxes before the first moof (a largesize free box) in the header', () => {
    const header = Buffer.concat([ftyp, largeBox('free', Buffer.alloc(10)), moov]);
    expectSamePiecesEverySplit('mp4-fragments', Buffer.concat([header, ...mp4Fragments]), [header, ...mp4Fragments]);
  });

  it('returns the header as soon as its moov is whole, and a fragment from the push that completes its mdat', () => {
    const chunker = fragmentChunker('mp4-fragments');
    expect(hex(chunker.push(mp4Header.subarray(0, mp4Header.length - 1)))).toEqual([]);
    expect(hex(chunker.push(mp4Header.subarray(mp4Header.length - 1)))).toEqual(hex([mp4Header])); // a viewer's first bytes go at once
    expect(hex(chunker.push(mp4Fragments[0].subarray(0, 8)))).toEqual([]);
    expect(chunker.push(mp4Fragments[0].subarray(8, mp4Fragments[0].length - 1))).toEqual([]);
    expect(hex(chunker.push(mp4Fragments[0].subarray(mp4Fragments[0].length - 1)))).toEqual(hex([mp4Fragments[0]]));
    expect(hex(chunker.push(Buffer.concat(mp4Fragments.slice(1))))).toEqual(hex(mp4Fragments.slice(1)));
    expect(chunker.end()).toEqual([]);
  });

  it('gives a trailing whole box (an mfra) from end(), and a header alone when there is no fragment', () => {
    const mfra = box('mfra', fullBox('mfro', 0, u32(16)));
    expectSamePiecesEverySplit('mp4-fragments', Buffer.concat([mp4Input, mfra]), [mp4Header, ...mp4Fragments, mfra]);
    expectSamePiecesEverySplit('mp4-fragments', mp4Header, [mp4Header]);
  });

  it('end() on empty input gives nothing', () => {
    expect(fragmentChunker('mp4-fragments').end()).toEqual([]);
  });

  it.each([
    ['in the middle of an mdat', mp4Input.length - 3],
    ['in the middle of a moof', mp4Header.length + 20],
    ['in the middle of a box header', mp4Header.length + mp4Fragments[0].length + 5],
    ['in the middle of the header', ftyp.length + 10],
    ['before the first box header is whole', 5],
  ])('end() throws when the output stops %s', (_what, cut) => {
    for (const [, sizes] of splits(mp4Input.subarray(0, cut))) {
      expect(() => chunk('mp4-fragments', mp4Input.subarray(0, cut), sizes)).toThrow(/ends in the middle of a box/);
    }
  });

  it('throws on a box smaller than its own header', () => {
    const bad = Buffer.concat([ftyp, u32(4), Buffer.from('junk', 'latin1'), moov]);
    expect(() => fragmentChunker('mp4-fragments').push(bad)).toThrow(/malformed MP4 box "junk" of 4 bytes/);
    expect(() => chunk('mp4-fragments', bad, ones())).toThrow(/malformed MP4 box/);
    const badLarge = Buffer.concat([mp4Header, u32(1), Buffer.from('moof', 'latin1'), u64(3)]);
    expect(() => chunk('mp4-fragments', badLarge, ones())).toThrow(/malformed MP4 box "moof" of 3 bytes/);
  });

  it('framesInPiece counts trun samples of a fragment, 0 for the header', () => {
    expect(framesInPiece('mp4-fragments', mp4Header)).toBe(0);
    expect(framesInPiece('mp4-fragments', mp4Fragments[0])).toBe(30);
    expect(framesInPiece('mp4-fragments', mp4Fragments[2])).toBe(17);
    expect(framesInPiece('mp4-fragments', mp4Fragments[3])).toBe(1);
    // Two trafs, and two truns in one traf, all counted.
    const twoTrafs = Buffer.concat([
      box(
        'moof',
        fullBox('mfhd', 0, u32(9)),
        box('traf', fullBox('tfhd', 0, u32(1)), fullBox('trun', 0, u32(4)), fullBox('trun', 0, u32(5))),
        box('traf', fullBox('tfhd', 0, u32(2)), fullBox('trun', 0, u32(6))),
      ),
      box('mdat', Buffer.alloc(3)),
    ]);
    expect(framesInPiece('mp4-fragments', twoTrafs)).toBe(15);
    expect(() => framesInPiece('webm-clusters', webmClusters[0])).toThrow(/frames are not counted in webm-clusters/);
  });

  // BUG (src/streaming/fragment-chunker.ts, framesInPiece, line 181): its box walker reads only the
  // 32-bit size, so a fragment whose mdat has a 64-bit largesize (size field 1) throws
  // 'malformed MP4 box' instead of counting the moof's samples. Remove `.failing` once fixed.
  it('framesInPiece counts the samples of a fragment whose mdat has a 64-bit largesize', () => {
    expect(framesInPiece('mp4-fragments', mp4Fragments[1])).toBe(30);
  });

  // BUG (src/streaming/fragment-chunker.ts, Mp4Chunker.finish, line 78): the walk of what is left
  // takes a size field of 1 (a largesize box) as 8 bytes, so an output cut inside a largesize mdat
  // whose remaining length happens to be a multiple of 8 is returned as a whole piece instead of
  // throwing. Remove `.failing` once fixed.
  it('end() throws when the output stops inside a 64-bit largesize mdat', () => {
    const moof = mp4Fragment(5, 3, 0).subarray(0, -8); // without its empty mdat
    // A fragment whose largesize mdat (64 payload bytes) is cut after 32.
    const truncated = Buffer.concat([mp4Header, moof, u32(1), Buffer.from('mdat', 'latin1'), u64(16 + 64), Buffer.alloc(32)]);
    expect(() => chunk('mp4-fragments', truncated, [truncated.length])).toThrow(/ends in the middle of a box/);
  });
});

describe('fragmentChunker on synthetic WebM', () => {
  it('cuts the header (EBML, Segment of unknown size, Info, Tracks), then each Cluster of known or unknown size, whatever the split', () => {
    expectSamePiecesEverySplit('webm-clusters', webmInput, [webmHeader, ...webmClusters]);
  });

  it('every piece after the first starts with the Cluster id', () => {
    const pieces = chunk('webm-clusters', webmInput, randomSizes(42, 100));
    expect(pieces).toHaveLength(1 + webmClusters.length);
    expect(pieces[0].subarray(0, 4).toString('hex')).toBe('1a45dfa3');
    for (const piece of pieces.slice(1)) expect(piece.subarray(0, 4).toString('hex')).toBe('1f43b675');
  });

  it('ends a Cluster of unknown size at the next Cluster or Cues, and gives trailing Cues from end()', () => {
    const last = unknownCluster(5000, 2, 30);
    const input = Buffer.concat([webmHeader, ...webmClusters, last, cues]);
    expectSamePiecesEverySplit('webm-clusters', input, [webmHeader, ...webmClusters, last, cues]);
  });

  it('returns a Cluster of unknown size only once the next top-level element header is whole', () => {
    const chunker = fragmentChunker('webm-clusters');
    const first = webmClusters[1]; // unknown size
    const next = webmClusters[2];
    expect(chunker.push(Buffer.concat([webmHeader, first]))).toHaveLength(1); // the header only: where the cluster ends is not known
    expect(chunker.push(next.subarray(0, 11))).toEqual([]); // the next id, and 7 of its 8 size bytes
    expect(hex(chunker.push(next.subarray(11, 12)))).toEqual(hex([first]));
    expect(chunker.push(next.subarray(12, next.length - 1))).toEqual([]);
    expect(hex(chunker.push(next.subarray(next.length - 1)))).toEqual(hex([next])); // a known size: whole as soon as its last byte is in
    expect(chunker.end()).toEqual([]);
  });

  it('end() gives what is left, even an unfinished cluster (no truncation check for WebM)', () => {
    const cut = webmInput.length - 10;
    const pieces = chunk('webm-clusters', webmInput.subarray(0, cut), [cut]);
    expect(hex(pieces)).toEqual(hex([webmHeader, ...webmClusters.slice(0, -1), webmClusters[webmClusters.length - 1].subarray(0, -10)]));
  });

  it('throws on a malformed element id', () => {
    const bad = Buffer.concat([webmHeader, Buffer.from([0x00, 0x81, 0x00]), ...webmClusters]);
    expect(() => chunk('webm-clusters', bad, [bad.length])).toThrow(/malformed EBML id/);
    expect(() => chunk('webm-clusters', bad, ones())).toThrow(/malformed EBML id/);
    const badCluster = Buffer.concat([webmHeader, webmClusters[0], CLUSTER_ID, UNKNOWN_8, uint(0xe7, 0), Buffer.from([0x05]), ...webmClusters]);
    expect(() => chunk('webm-clusters', badCluster, ones())).toThrow(/malformed EBML id/);
  });

  it('throws on a malformed size', () => {
    const bad = Buffer.concat([webmHeader, idBytes(0xec), Buffer.from([0x00]), ...webmClusters]);
    expect(() => chunk('webm-clusters', bad, randomSizes(3, 20))).toThrow(/malformed EBML size/);
  });

  it('throws on an element of unknown size outside a Cluster, or inside one of unknown size', () => {
    const tracksUnknown = Buffer.concat([ebmlHead, idBytes(0x18538067), UNKNOWN_8, info, idBytes(0x1654ae6b), UNKNOWN_8, tracks, ...webmClusters]);
    expect(() => chunk('webm-clusters', tracksUnknown, ones())).toThrow(/of unknown size outside a Cluster/);
    const blockUnknown = Buffer.concat([webmHeader, CLUSTER_ID, UNKNOWN_8, uint(0xe7, 0), idBytes(0xa3), UNKNOWN_1, Buffer.alloc(5), webmClusters[0]]);
    expect(() => chunk('webm-clusters', blockUnknown, [blockUnknown.length])).toThrow(/unknown size inside a Cluster/);
  });

  it('framesInPiece does not count WebM', () => {
    expect(() => framesInPiece('webm-clusters', webmHeader)).toThrow(/not counted/);
  });
});

describe('fragmentChunker on synthetic IVF', () => {
  it('cuts the 32-byte header, then one piece per frame (empty frames too), whatever the split', () => {
    expectSamePiecesEverySplit('ivf-frames', ivfInput, [ivfHeader(ivfFrames.length), ...ivfFrames]);
  });

  it('returns each frame from the push that completes it', () => {
    const chunker = fragmentChunker('ivf-frames');
    expect(chunker.push(ivfInput.subarray(0, 31))).toEqual([]);
    expect(hex(chunker.push(ivfInput.subarray(31, 32 + 12 + 499)))).toEqual(hex([ivfHeader(ivfFrames.length)]));
    expect(hex(chunker.push(ivfInput.subarray(32 + 12 + 499, 32 + 12 + 500)))).toEqual(hex([ivfFrames[0]]));
    expect(hex(chunker.push(ivfInput.subarray(32 + 12 + 500)))).toEqual(hex(ivfFrames.slice(1)));
    expect(chunker.end()).toEqual([]);
  });

  it('framesInPiece: 0 for the header, 1 per frame', () => {
    const pieces = chunk('ivf-frames', ivfInput, randomSizes(11, 64));
    expect(pieces.map((p) => framesInPiece('ivf-frames', p))).toEqual([0, 1, 1, 1, 1, 1, 1]);
  });

  it('throws on input that is not IVF', () => {
    const bad = Buffer.from(ivfInput);
    bad.write('RIFF', 0, 'latin1');
    expect(() => chunk('ivf-frames', bad, [bad.length])).toThrow(/not an IVF stream/);
    expect(() => chunk('ivf-frames', bad, ones())).toThrow(/not an IVF stream/);
  });

  // BUG (src/streaming/fragment-chunker.ts, IvfChunker.next, line 93): the header piece is cut at
  // the header's own length field without checking it against the 32 bytes buffered, so a header
  // whose length field says 64 gives a different outcome by split: all at once, the header piece
  // takes 32 bytes of the first frame, the frames after are misread and end() throws; byte by
  // byte, the field is in effect ignored (a 32-byte header, then the frames). Remove `.failing`
  // once fixed (either way: honour the field by waiting for it, or refuse it).
  it('a header length field other than 32 gives the same result whatever the split', () => {
    const odd = Buffer.from(ivfInput);
    odd.writeUInt16LE(64, 6);
    const outcome = (sizes: Iterable<number>) => {
      try {
        return hex(chunk('ivf-frames', odd, sizes));
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(outcome(ones())).toEqual(outcome([odd.length]));
  });

  it.each([
    ['in the middle of a frame', ivfInput.length - 1],
    ['in the middle of a frame header', 32 + ivfFrames[0].length + 5],
    ['in the middle of the file header', 20],
  ])('end() throws when the output stops %s', (_what, cut) => {
    for (const [, sizes] of splits(ivfInput.subarray(0, cut))) {
      expect(() => chunk('ivf-frames', ivfInput.subarray(0, cut), sizes)).toThrow(/the IVF output ends in the middle of a frame/);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('fragmentChunker on ffmpeg outputs', () => {
  let dir: string;
  const files: Record<'mp4' | 'webm' | 'ivf', Buffer> = {} as never;
  const lavfi = ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=30', '-t', '3'];
  const vp9 = ['-c:v', 'libvpx-vp9', '-g', '30', '-deadline', 'realtime', '-cpu-used', '8'];

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fragment-chunker-'));
    const out = (name: string) => path.join(dir, name);
    execFileSync('ffmpeg', [...lavfi, '-c:v', 'libx264', '-g', '30', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4', out('out.mp4')]);
    execFileSync('ffmpeg', [...lavfi, ...vp9, '-live', '1', '-f', 'webm', out('out.webm')]);
    execFileSync('ffmpeg', [...lavfi, ...vp9, '-f', 'ivf', out('out.ivf')]);
    files.mp4 = fs.readFileSync(out('out.mp4'));
    files.webm = fs.readFileSync(out('out.webm'));
    files.ivf = fs.readFileSync(out('out.ivf'));
  });

  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The pieces, checked to be the same for every split, and to be the file cut. */
  function piecesOf(kind: FragmentKind, file: Buffer): Buffer[] {
    const whole = chunk(kind, file, [file.length]);
    expect(Buffer.concat(whole).equals(file)).toBe(true);
    for (const [how, sizes] of splits(file)) {
      const pieces = chunk(kind, file, sizes);
      expect({ how, lengths: pieces.map((p) => p.length) }).toEqual({ how, lengths: whole.map((p) => p.length) });
      expect(Buffer.concat(pieces).equals(file)).toBe(true);
    }
    return whole;
  }

  it('fragmented MP4 (a keyframe every second for 3 s): the header, 3 fragments of 30 frames, and the mfra index ffmpeg ends a file with', () => {
    const pieces = piecesOf('mp4-fragments', files.mp4);
    expect(pieces.map((p) => p.toString('latin1', 4, 8))).toEqual(['ftyp', 'moof', 'moof', 'moof', 'mfra']);
    expect(pieces[0].includes(Buffer.from('moov', 'latin1'))).toBe(true);
    expect(pieces[0].includes(Buffer.from('moof', 'latin1'))).toBe(false);
    for (const piece of pieces.slice(1, 4)) {
      const moofSize = piece.readUInt32BE(0);
      expect(piece.toString('latin1', moofSize + 4, moofSize + 8)).toBe('mdat'); // moof, then its mdat, and nothing else
      expect(moofSize + piece.readUInt32BE(moofSize)).toBe(piece.length);
    }
    expect(pieces[4].readUInt32BE(0)).toBe(pieces[4].length); // one whole box
    expect(pieces.map((p) => framesInPiece('mp4-fragments', p))).toEqual([0, 30, 30, 30, 0]);
  });

  it('live WebM: the header, then pieces that each start with the Cluster id', () => {
    const pieces = piecesOf('webm-clusters', files.webm);
    expect(pieces.length).toBeGreaterThanOrEqual(2);
    expect(pieces[0].subarray(0, 4).toString('hex')).toBe('1a45dfa3');
    expect(pieces[0].includes(CLUSTER_ID)).toBe(false);
    // After the header (sent once the tracks are known): header leftovers (Tags) without a Cluster, then one Cluster per piece.
    const clusters = pieces.slice(1).filter((p) => p.subarray(0, 4).toString('hex') === '1f43b675');
    expect(clusters.length).toBeGreaterThanOrEqual(1);
    for (const piece of pieces.slice(1)) if (piece.subarray(0, 4).toString('hex') !== '1f43b675') expect(piece.includes(CLUSTER_ID)).toBe(false);
  });

  it('VP9 IVF: the header, then one piece per frame (90 frames)', () => {
    const pieces = piecesOf('ivf-frames', files.ivf);
    expect(pieces).toHaveLength(91);
    expect(pieces[0]).toHaveLength(32);
    expect(pieces[0].toString('latin1', 0, 4)).toBe('DKIF');
    expect(pieces.reduce((sum, p) => sum + framesInPiece('ivf-frames', p), 0)).toBe(90);
  });
});
