import * as fs from 'node:fs';
import * as path from 'node:path';
import { fragmentIndex, initSegmentOf, mediaSegmentOf } from '../../src/play/media-segment';
import { byteRangePlaylist, masterPlaylist, mediaPlaylist } from '../../src/play/playlist';
import { countFragmentedSamples, readBoxes, trackTimescales } from '../../src/streaming/fmp4-joiner';

// 10 frames of 64x64 H.264 at 30 fps, a keyframe every 5: ftyp, moov, two moof+mdat, mfra.
const TINY = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'media', 'tiny-fragmented.mp4'));
// 5 s of a 440 Hz tone, 48 kHz AAC, fragmented every 2 s as play mode's sound track is.
const SOUND = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'media', 'tiny-sound.mp4'));

/** Every fragment's decode time (tfdt) and sequence number, in file order. */
function fragments(buf: Buffer): Array<{ tfdt: bigint; sequence: number }> {
  return readBoxes(buf)
    .filter((b) => b.type === 'moof')
    .map((moof) => {
      const inner = readBoxes(buf, moof.start + 8, moof.start + moof.size);
      const mfhd = inner.find((b) => b.type === 'mfhd')!;
      const traf = inner.find((b) => b.type === 'traf')!;
      const tfdt = readBoxes(buf, traf.start + 8, traf.start + traf.size).find((b) => b.type === 'tfdt')!;
      const v1 = buf[tfdt.start + 8] === 1;
      return { sequence: buf.readUInt32BE(mfhd.start + 12), tfdt: v1 ? buf.readBigUInt64BE(tfdt.start + 12) : BigInt(buf.readUInt32BE(tfdt.start + 12)) };
    });
}

describe('mediaPlaylist', () => {
  it('lists every segment with its exact duration, a complete VOD playlist with its init map', () => {
    const text = mediaPlaylist(
      [
        { frames: 3, uri: 'tok/seg-0.m4s?k=a' },
        { frames: 60, uri: 'tok/seg-1.m4s?k=b' },
        { frames: 61, uri: 'tok/seg-2.m4s?k=c' },
      ],
      30,
      'tok/init.mp4?k=a',
    );
    expect(text).toBe(
      [
        '#EXTM3U',
        '#EXT-X-VERSION:7',
        '#EXT-X-TARGETDURATION:3',
        '#EXT-X-PLAYLIST-TYPE:VOD',
        '#EXT-X-MEDIA-SEQUENCE:0',
        '#EXT-X-INDEPENDENT-SEGMENTS',
        '#EXT-X-MAP:URI="tok/init.mp4?k=a"',
        '#EXTINF:0.100000,',
        'tok/seg-0.m4s?k=a',
        '#EXTINF:2.000000,',
        'tok/seg-1.m4s?k=b',
        '#EXTINF:2.033333,',
        'tok/seg-2.m4s?k=c',
        '#EXT-X-ENDLIST',
        '',
      ].join('\n'),
    );
  });

  it('a whole-second longest segment is its own target duration; fractional rates are exact', () => {
    expect(mediaPlaylist([{ frames: 50, uri: 's' }], 25, 'i')).toContain('#EXT-X-TARGETDURATION:2\n');
    expect(mediaPlaylist([{ frames: 60, uri: 's' }], 30000 / 1001, 'i')).toContain('#EXTINF:2.002000,\ns\n');
  });

  it('refuses an empty movie', () => {
    expect(() => mediaPlaylist([], 30, 'i')).toThrow(/at least one segment/);
  });
});

describe('play segments from a stored fragmented MP4', () => {
  it('the init segment is the ftyp and moov, byte for byte', () => {
    const init = initSegmentOf(TINY);
    expect(readBoxes(init).map((b) => b.type)).toEqual(['ftyp', 'moov']);
    const [ftyp, moov] = readBoxes(TINY);
    expect(init.equals(TINY.subarray(0, ftyp.size + moov.size))).toBe(true);
  });

  it('a media segment is the fragments alone, their decode times moved to the movie time of the start frame', () => {
    const [, moov] = readBoxes(TINY);
    const timescale = [...trackTimescales(TINY, moov).values()][0];
    const before = fragments(TINY);
    expect(before).toHaveLength(2);
    const media = mediaSegmentOf(TINY, 240, 30);
    const types = readBoxes(media).map((b) => b.type);
    expect(types).toEqual(['moof', 'mdat', 'moof', 'mdat']);
    const after = fragments(media);
    expect(after.map((f) => f.tfdt)).toEqual(before.map((f) => f.tfdt + BigInt((240 * timescale) / 30)));
    expect(after.map((f) => f.sequence)).toEqual([1, 2]);
    // The samples themselves are untouched.
    const mdat = (buf: Buffer) => readBoxes(buf).filter((b) => b.type === 'mdat').map((b) => buf.subarray(b.start, b.start + b.size).toString('hex'));
    expect(mdat(media)).toEqual(mdat(TINY));
  });

  it('a file without a moov is refused', () => {
    const moofOnly = mediaSegmentOf(TINY, 0, 30);
    expect(() => initSegmentOf(moofOnly)).toThrow(/no moov/);
    expect(() => mediaSegmentOf(moofOnly, 0, 30)).toThrow(/before the moov/);
  });
});

describe('play mode sound', () => {
  it('indexes a fragmented sound track: the init, then every moof + mdat to the end, each with its duration', () => {
    const index = fragmentIndex(SOUND);
    const boxes = readBoxes(SOUND);
    expect(index.timescale).toBe(48000);
    expect(index.initSize).toBe(boxes.find((b) => b.type === 'moov')!.start + boxes.find((b) => b.type === 'moov')!.size);
    expect(index.fragments).toHaveLength(3);
    // Contiguous from the init to the end of the last mdat.
    let at = index.initSize;
    for (const f of index.fragments) {
      expect(f.offset).toBe(at);
      expect(readBoxes(SOUND, f.offset, f.offset + f.size).map((b) => b.type)).toEqual(['moof', 'mdat']);
      at += f.size;
    }
    expect(readBoxes(SOUND).filter((b) => b.start >= at).every((b) => b.type === 'mfra')).toBe(true);
    // Per-sample durations: 5 s of tone plus the encoder's 1024 priming samples (the last AAC frame is a short one).
    expect(index.fragments.reduce((sum, f) => sum + f.duration, 0)).toBe(5 * 48000 + 1024);
    expect(countFragmentedSamples(SOUND)).toBe(Math.ceil((5 * 48000 + 1024) / 1024));
    expect(index.fragments[0].duration / 48000).toBeGreaterThan(1.9);
    expect(index.fragments[0].duration / 48000).toBeLessThan(2.1);
  });

  it('a byte-range playlist into one file, and the master playlist with the sound as an audio rendition', () => {
    expect(byteRangePlaylist('audio.mp4?k=abc', 729, [{ offset: 729, size: 8578, seconds: 2.005333 }, { offset: 9307, size: 4614, seconds: 1.010667 }])).toBe(
      [
        '#EXTM3U',
        '#EXT-X-VERSION:7',
        '#EXT-X-TARGETDURATION:3',
        '#EXT-X-PLAYLIST-TYPE:VOD',
        '#EXT-X-MEDIA-SEQUENCE:0',
        '#EXT-X-INDEPENDENT-SEGMENTS',
        '#EXT-X-MAP:URI="audio.mp4?k=abc",BYTERANGE="729@0"',
        '#EXTINF:2.005333,',
        '#EXT-X-BYTERANGE:8578@729',
        'audio.mp4?k=abc',
        '#EXTINF:1.010667,',
        '#EXT-X-BYTERANGE:4614@9307',
        'audio.mp4?k=abc',
        '#EXT-X-ENDLIST',
        '',
      ].join('\n'),
    );
    expect(masterPlaylist({ uri: 'tok/video.m3u8', width: 1920, height: 1080, fps: 30, bandwidth: 6_380_000 }, 'tok/audio.m3u8')).toBe(
      [
        '#EXTM3U',
        '#EXT-X-VERSION:7',
        '#EXT-X-INDEPENDENT-SEGMENTS',
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="sound",NAME="Sound",DEFAULT=YES,AUTOSELECT=YES,URI="tok/audio.m3u8"',
        '#EXT-X-STREAM-INF:BANDWIDTH=6380000,RESOLUTION=1920x1080,FRAME-RATE=30.000,AUDIO="sound"',
        'tok/video.m3u8',
        '',
      ].join('\n'),
    );
  });
});
