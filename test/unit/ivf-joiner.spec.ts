import { IvfJoiner, readIvfHeader } from '../../src/streaming/ivf-joiner';

/** A tiny IVF stream: 30 fps time base, frames with the given pts and one-byte payloads. */
function ivf(pts: number[], opts: { width?: number; rate?: number; scale?: number } = {}): Buffer {
  const header = Buffer.alloc(32);
  header.write('DKIF', 0, 'latin1');
  header.writeUInt16LE(0, 4);
  header.writeUInt16LE(32, 6);
  header.write('VP90', 8, 'latin1');
  header.writeUInt16LE(opts.width ?? 64, 12);
  header.writeUInt16LE(48, 14);
  header.writeUInt32LE(opts.rate ?? 30, 16);
  header.writeUInt32LE(opts.scale ?? 1, 20);
  header.writeUInt32LE(pts.length, 24);
  const frames = pts.map((p, i) => {
    const f = Buffer.alloc(13);
    f.writeUInt32LE(1, 0);
    f.writeBigUInt64LE(BigInt(p), 4);
    f[12] = i;
    return f;
  });
  return Buffer.concat([header, ...frames]);
}

function framePts(stream: Buffer): number[] {
  const out: number[] = [];
  for (let pos = readIvfHeader(stream).headerSize; pos < stream.length; pos += 12 + stream.readUInt32LE(pos)) out.push(Number(stream.readBigUInt64LE(pos + 4)));
  return out;
}

describe('IvfJoiner', () => {
  it('keeps the first header (with the whole length), drops the others, and shifts every timestamp by its segment start', () => {
    const joiner = new IvfJoiner(30, 7);
    const joined = Buffer.concat([joiner.push(ivf([0, 1, 2]), 0), joiner.push(ivf([0, 1]), 3), joiner.push(ivf([0, 1]), 5)]);
    expect(readIvfHeader(joined)).toMatchObject({ fourcc: 'VP90', width: 64, height: 48, rate: 30, scale: 1, frames: 7 });
    expect(framePts(joined)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(joined.length).toBe(32 + 7 * 13);
  });

  it('converts frames to the stream time base (1/1000 here)', () => {
    const joiner = new IvfJoiner(25, 4);
    const joined = Buffer.concat([joiner.push(ivf([0, 40], { rate: 1000 }), 0), joiner.push(ivf([0, 40], { rate: 1000 }), 2)]);
    expect(framePts(joined)).toEqual([0, 40, 80, 120]);
  });

  it('refuses segments encoded differently, overlapping, truncated or not IVF', () => {
    const joiner = new IvfJoiner(30, 6);
    joiner.push(ivf([0, 1, 2]), 0);
    expect(() => joiner.push(ivf([0], { width: 32 }), 3)).toThrow(/encoded differently: VP90 32x48/);
    expect(() => new IvfJoiner(30, 6).push(Buffer.from('RIFF0000WEBPVP8 '.repeat(3)), 0)).toThrow(/not an IVF stream/);
    expect(() => joiner.push(ivf([0, 1]), 2)).toThrow(/timestamps go back: 2 after 2/);
    const cut = ivf([0, 1]);
    expect(() => new IvfJoiner(30, 2).push(cut.subarray(0, cut.length - 1), 0)).toThrow(/runs past the segment/);
  });
});
