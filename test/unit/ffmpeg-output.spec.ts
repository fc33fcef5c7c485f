import { ffmpegErrorSummary, parseProbe, ProgressParser } from '../../src/compiler/ffmpeg-output';

describe('ProgressParser', () => {
  // Captured from `ffmpeg -progress pipe:1 -nostats` (5.1), split at awkward places on purpose.
  const captured =
    'frame=12\nfps=0.00\nstream_0_0_q=28.0\nbitrate=N/A\ntotal_size=48\nout_time_us=400000\nout_time_ms=400000\nout_time=00:00:00.400000\ndup_frames=0\ndrop_frames=0\nspeed=0.79x\nprogress=continue\n' +
    'frame=41\nfps=40.1\nstream_0_0_q=28.0\nout_time=00:00:01.366667\nspeed=1.33x\nprogress=continue\n' +
    'frame=60\nfps=45.2\nout_time=00:00:02.000000\nprogress=end\n';

  it('reports the frame count of each completed block, whatever the chunking', () => {
    for (const size of [1, 7, 64, captured.length]) {
      const parser = new ProgressParser();
      const frames: number[] = [];
      for (let i = 0; i < captured.length; i += size) frames.push(...parser.push(captured.slice(i, i + size)));
      expect(frames).toEqual([12, 41, 60]);
    }
  });

  it('ignores blocks without a frame count and lines without a key', () => {
    const parser = new ProgressParser();
    expect(parser.push('garbage\n=x\nout_time=00:00:01\nprogress=continue\n')).toEqual([]);
  });
});

describe('parseProbe', () => {
  it('a JPEG is an image, not a video', () => {
    expect(
      parseProbe({ streams: [{ codec_type: 'video', codec_name: 'mjpeg', width: 1200, height: 1200 }], format: { format_name: 'image2' } }),
    ).toEqual({ hasVideo: false, hasAudio: false, isImage: true, width: 1200, height: 1200, durationSec: undefined });
  });

  it('an mp4 with sound is a video with audio and a duration', () => {
    expect(
      parseProbe({
        streams: [
          { codec_type: 'video', codec_name: 'h264', width: 1280, height: 720, nb_frames: '240' },
          { codec_type: 'audio', codec_name: 'aac' },
        ],
        format: { format_name: 'mov,mp4,m4a,3gp,3g2,mj2', duration: '8.000000' },
      }),
    ).toEqual({ hasVideo: true, hasAudio: true, isImage: false, width: 1280, height: 720, durationSec: 8 });
  });

  it('an mp3 with cover art is audio only', () => {
    expect(
      parseProbe({
        streams: [
          { codec_type: 'audio', codec_name: 'mp3' },
          { codec_type: 'video', codec_name: 'mjpeg', disposition: { attached_pic: 1 } },
        ],
        format: { format_name: 'mp3', duration: '30.5' },
      }),
    ).toMatchObject({ hasVideo: false, hasAudio: true, isImage: false, durationSec: 30.5 });
  });

  it.each(['hls', 'concat', 'dash', 'tty', 'lavfi', 'mov,mp4,hls'])('a %s input is nothing usable, whatever its streams', (format) => {
    expect(
      parseProbe({ streams: [{ codec_type: 'video', codec_name: 'h264', width: 10, height: 10 }], format: { format_name: format, duration: '5' } }),
    ).toEqual({ hasVideo: false, hasAudio: false, isImage: false });
  });

  it('nothing recognisable is nothing usable', () => {
    expect(parseProbe({})).toEqual({ hasVideo: false, hasAudio: false, isImage: false });
  });
});

describe('ffmpegErrorSummary', () => {
  it('keeps the last lines that say what went wrong', () => {
    const stderr = 'noise\n\n[in#0] bad\n[AVFilterGraph @ 0x1] No such filter: "foo"\nError initializing complex filters.\nInvalid argument\n';
    expect(ffmpegErrorSummary(stderr, 3)).toBe('[AVFilterGraph @ 0x1] No such filter: "foo" | Error initializing complex filters. | Invalid argument');
    expect(ffmpegErrorSummary('')).toBe('ffmpeg exited without an error message');
  });
});
