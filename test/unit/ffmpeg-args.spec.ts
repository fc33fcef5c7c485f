import { buildLiveMuxArgs, buildRemuxArgs, buildRenderArgs, buildSoundArgs, ffColor, RAW_STILL_OUTPUT } from '../../src/compiler/ffmpeg-args';
import type { PlannedLayer, RenderPlan } from '../../src/compiler/render-plan';

const fade = (duration: number) => ({ type: 'fade' as const, duration, easing: 'linear' as const, direction: 'left' as const, distance: 0 });
const slide = (direction: 'left' | 'down', distance: number, duration: number) => ({
  type: 'slide' as const,
  duration,
  easing: 'linear' as const,
  direction,
  distance,
});

function layer(overrides: Partial<PlannedLayer>): PlannedLayer {
  return {
    id: 's0.l0',
    startFrame: 0,
    endFrame: 60,
    x: 0,
    y: 0,
    width: 100,
    height: 50,
    opacity: 1,
    source: { kind: 'color', color: '#00ff00' },
    fit: 'fill',
    animIn: [],
    animOut: [],
    ...overrides,
  };
}

function plan(layers: PlannedLayer[], extra: Partial<RenderPlan> = {}): RenderPlan {
  return {
    templateId: 'p/m',
    version: 'v1',
    width: 320,
    height: 180,
    fps: 30,
    totalFrames: 60,
    background: '#000000',
    posterFrame: 30,
    scenes: [{ index: 0, startFrame: 0, endFrame: 60, background: '#000000', layers }],
    audio: [],
    ...extra,
  };
}

const HEAD = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y'];
// RGB → YUV with the BT.709 matrix, limited range; drawn once and repeated
const RGB_TO_YUV = 'scale=out_color_matrix=bt709:out_range=tv';
const ONCE = 'loop=loop=-1:size=1:start=0';
const CANVAS = `color=c=0x000000:s=320x180:r=30,format=rgb24,${RGB_TO_YUV},format=yuv420p,${ONCE},trim=end_frame=60,settb=expr=1/30,setpts=N+0[bg0]`;
const FINAL = 'setpts=PTS-STARTPTS,format=yuv420p,setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709';
const BT709 = ['-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'tv'];
const SILENCE_2S = 'anullsrc=r=48000:cl=stereo,atrim=end=2';
const VP9 = ['-c:v', 'libvpx-vp9', '-crf', '33', '-b:v', '0', '-deadline', 'good', '-cpu-used', '5', '-row-mt', '1', '-pix_fmt', 'yuv420p', ...BT709];

describe('buildRenderArgs', () => {
  it('a solid layer that fades in: exact arguments for a whole-movie mp4', () => {
    const args = buildRenderArgs(plan([layer({ startFrame: 15, x: 10, y: 20, animIn: [fade(0.5)] })]), { from: 0, to: 60 }, { format: 'mp4' }, 'out.mp4');
    expect(args).toEqual([
      ...HEAD,
      '-filter_complex',
      [
        'color=c=0x000000:s=320x180:r=30,format=rgb24,scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,loop=loop=-1:size=1:start=0,trim=end_frame=60,settb=expr=1/30,setpts=N+0[bg0]',
        'color=c=0x00FF00:s=100x50:r=30,format=rgba,scale=out_color_matrix=bt709:out_range=tv,format=yuva420p,loop=loop=-1:size=1:start=0,trim=end_frame=45,settb=expr=1/30,setpts=N+15,fade=t=in:st=0.5:d=0.5:alpha=1[l1]',
        "[bg0][l1]overlay=x='10':y='20':eof_action=pass[o2]",
        '[o2]setpts=PTS-STARTPTS,format=yuv420p,setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709[v3]',
        `${SILENCE_2S}[a4]`,
      ].join(';'),
      '-map', '[v3]',
      '-map', '[a4]',
      '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-pix_fmt', 'yuv420p',
      '-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'tv',
      '-c:a', 'aac', '-b:a', '160k', '-ar', '48000', '-ac', '2', '-movflags', '+faststart', '-f', 'mp4',
      'out.mp4',
    ]);
  });

  it('colour: every RGB source becomes BT.709 limited-range YUV once; stills go back to RGB with the same matrix', () => {
    const still = layer({ source: { kind: 'still', path: '/r/a.png' } });
    const args = buildRenderArgs(plan([still]), { from: 0, to: 60 }, { format: 'png' }, 'f.png');
    const chains = args[args.indexOf('-filter_complex') + 1].split(';');
    expect(chains[1]).toBe(`[0:v]${RGB_TO_YUV},format=yuva420p,${ONCE},trim=end_frame=60,settb=expr=1/30,setpts=N+0[l1]`);
    expect(chains.slice(-2)).toEqual([`[o2]${FINAL}[v3]`, '[v3]scale=in_color_matrix=bt709:in_range=tv,format=rgb24[rgb]']);
    expect(args.slice(args.indexOf('-map'))).toEqual(['-map', '[rgb]', '-frames:v', '1', '-c:v', 'png', '-f', 'image2', '-update', '1', 'f.png']);
    // mp4 segments carry the tags too
    const seg = buildRenderArgs(plan([]), { from: 0, to: 30 }, { format: 'mp4', videoOnly: true, streamable: true }, 'seg.mp4');
    expect(seg.slice(seg.indexOf('-c:v'))).toEqual([
      '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-pix_fmt', 'yuv420p', ...BT709,
      '-g', '30', '-sc_threshold', '0', '-flush_packets', '1', '-frag_duration', '200000', '-movflags', 'frag_keyframe+empty_moov+default_base_moof+delay_moov', '-f', 'mp4', 'seg.mp4',
    ]);
  });

  it('a range starts every stream at its first frame in absolute time, so animations line up', () => {
    const args = buildRenderArgs(
      plan([layer({ startFrame: 15, animIn: [fade(0.5)], animOut: [fade(0.4)] })]),
      { from: 20, to: 50 },
      { format: 'mp4', videoOnly: true },
      'seg.mp4',
    );
    const graph = args[args.indexOf('-filter_complex') + 1];
    expect(graph.split(';')).toEqual([
      `color=c=0x000000:s=320x180:r=30,format=rgb24,${RGB_TO_YUV},format=yuv420p,${ONCE},trim=end_frame=30,settb=expr=1/30,setpts=N+20[bg0]`,
      // starts at frame 20 (not 15) but the fade still runs from 0.5 s: it reads absolute time
      `color=c=0x00FF00:s=100x50:r=30,format=rgba,${RGB_TO_YUV},format=yuva420p,${ONCE},trim=end_frame=30,settb=expr=1/30,setpts=N+20,fade=t=in:st=0.5:d=0.5:alpha=1,fade=t=out:st=1.6:d=0.4:alpha=1[l1]`,
      "[bg0][l1]overlay=x='0':y='0':eof_action=pass[o2]",
      `[o2]${FINAL}[v3]`,
    ]);
    expect(args).not.toContain('-c:a');
    expect(args.filter((a) => a === '-map')).toHaveLength(1);
  });

  it('a jpg or webp still comes raw (RGB24 on stdout, no progress there) for sharp to encode; only a still can', () => {
    const still = layer({ source: { kind: 'still', path: '/r/a.png' } });
    for (const format of ['jpg', 'webp'] as const) {
      const args = buildRenderArgs(plan([still]), { from: 30, to: 31 }, { format, quality: 85 }, RAW_STILL_OUTPUT, { progress: true, threads: 2 });
      expect(args.slice(0, 7)).toEqual([...HEAD, '-i', '/r/a.png']);
      expect(args).not.toContain('-progress');
      expect(args.slice(args.indexOf('-map'))).toEqual(['-map', '[rgb]', '-threads', '2', '-frames:v', '1', '-f', 'rawvideo', 'pipe:1']);
      // The same picture as the png still's graph.
      const png = buildRenderArgs(plan([still]), { from: 30, to: 31 }, { format: 'png' }, 'f.png');
      expect(args[args.indexOf('-filter_complex') + 1]).toBe(png[png.indexOf('-filter_complex') + 1]);
    }
    // Another engine's frames keep stdin; the still then goes through a PNG file as before.
    expect(buildRenderArgs(plan([still]), { from: 30, to: 31 }, { format: 'jpg' }, 'f.png').slice(-8)).toEqual(['-frames:v', '1', '-c:v', 'png', '-f', 'image2', '-update', '1', 'f.png'].slice(-8));
    expect(() => buildRenderArgs(plan([still]), { from: 0, to: 60 }, { format: 'mp4' }, RAW_STILL_OUTPUT)).toThrow(/only a still/);
  });

  it('layers outside the range add no input and no filter', () => {
    const args = buildRenderArgs(
      plan([layer({ id: 'a', startFrame: 0, endFrame: 10, source: { kind: 'still', path: '/r/a.png' } }), layer({ id: 'b', startFrame: 40, endFrame: 60 })]),
      { from: 10, to: 30 },
      { format: 'png' },
      'f.png',
    );
    expect(args).not.toContain('/r/a.png');
    expect(args[args.indexOf('-filter_complex') + 1]).toBe(
      `color=c=0x000000:s=320x180:r=30,format=rgb24,${RGB_TO_YUV},format=yuv420p,${ONCE},trim=end_frame=20,settb=expr=1/30,setpts=N+10[bg0];[bg0]${FINAL}[v1];[v1]scale=in_color_matrix=bt709:in_range=tv,format=rgb24[rgb]`,
    );
    expect(args.slice(-8)).toEqual(['-map', '[rgb]', '-frames:v', '1', '-c:v', 'png', '-f', 'image2', '-update', '1', 'f.png'].slice(-8));
  });

  it('a still is decoded once and repeated; slides are offsets of absolute time', () => {
    const args = buildRenderArgs(
      plan([layer({ source: { kind: 'still', path: '/r/text.png' }, x: 40, y: 30, opacity: 0.5, animIn: [slide('left', 200, 1)], animOut: [slide('down', 50, 0.5)] })]),
      { from: 0, to: 60 },
      { format: 'gif' },
      'o.gif',
    );
    expect(args.slice(5, 7)).toEqual(['-i', '/r/text.png']);
    const chains = args[args.indexOf('-filter_complex') + 1].split(';');
    expect(chains[1]).toBe(
      `[0:v]${RGB_TO_YUV},format=yuva420p,${ONCE},trim=end_frame=60,settb=expr=1/30,setpts=N+0,lut=a='val*0.5'[l1]`,
    );
    expect(chains[2]).toBe(
      "[bg0][l1]overlay=x='40+200*(1-clip((t-0)/1,0,1))':y='30+50*clip((t-1.5)/0.5,0,1)':eof_action=pass[o2]",
    );
    expect(chains.slice(4)).toEqual([
      '[v3]fps=15,scale=320:-2:flags=lanczos:in_color_matrix=bt709:in_range=tv,split[gifa][gifb]',
      '[gifa]palettegen=stats_mode=full[gifp]',
      '[gifb][gifp]paletteuse=dither=bayer:bayer_scale=4:diff_mode=rectangle[gif]',
    ]);
    expect(args.slice(-6)).toEqual(['-map', '[gif]', '-loop', '0', '-f', 'gif', 'o.gif'].slice(-6));
  });

  it('a looping clip is seeked to where the range starts, modulo its length', () => {
    const clip = layer({ startFrame: 0, endFrame: 60, fit: 'cover', source: { kind: 'video', path: '/c.mp4', trimStartSec: 0.5, loop: true, clipSec: 1 } });
    const args = buildRenderArgs(plan([clip]), { from: 45, to: 60 }, { format: 'webm', videoOnly: true }, 'o.webm');
    // 0.5 s trim + 1.5 s into the layer = 2 s, which is 0 s into a 1 s loop
    expect(args.slice(5, 11)).toEqual(['-stream_loop', '-1', '-ss', '0', '-i', '/c.mp4']);
    expect(args[args.indexOf('-filter_complex') + 1].split(';')[1]).toBe(
      // the clip's YUV is kept as it is (read as BT.709, no per-frame matrix conversion); RGB clips are converted
      '[0:v]fps=30,scale=in_color_matrix=bt709:out_color_matrix=bt709:out_range=tv,format=yuva420p,scale=100:50:force_original_aspect_ratio=increase,crop=100:50,trim=end_frame=15,settb=expr=1/30,setpts=N+45[l1]',
    );
    expect(args.slice(args.indexOf('-c:v'))).toEqual([...VP9, '-f', 'webm', 'o.webm']);
  });

  it('a clip that does not loop is cut to what is left of it', () => {
    const clip = layer({ source: { kind: 'video', path: '/c.mp4', trimStartSec: 1, loop: false, clipSec: 3 }, fit: 'contain' });
    const args = buildRenderArgs(plan([clip]), { from: 30, to: 60 }, { format: 'mp4', videoOnly: true }, 'o.mp4');
    expect(args.slice(5, 11)).toEqual(['-ss', '2', '-t', '2', '-i', '/c.mp4']);
    expect(args[args.indexOf('-filter_complex') + 1]).toContain(
      'scale=100:50:force_original_aspect_ratio=decrease,pad=100:50:(ow-iw)/2:(oh-ih)/2:color=black@0',
    );
  });

  it('mixes audio tracks once for the whole movie, then cuts the range', () => {
    const audio = [
      { id: 'a0', path: '/m.m4a', startFrame: 0, trimSec: 2, playSec: 2, volume: 0.5, fadeInSec: 0.5, fadeOutSec: 1, loop: true },
      { id: 'a1', path: '/v.mp3', startFrame: 30, trimSec: 0, playSec: 1, volume: 1, fadeInSec: 0, fadeOutSec: 0, loop: false },
    ];
    const args = buildRenderArgs(plan([], { audio }), { from: 15, to: 45 }, { format: 'mp4' }, 'o.mp4');
    expect(args.slice(5, 11)).toEqual(['-stream_loop', '-1', '-i', '/m.m4a', '-i', '/v.mp3']);
    const chains = args[args.indexOf('-filter_complex') + 1].split(';');
    expect(chains.slice(-3)).toEqual([
      '[0:a]aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo,asetpts=N/SR/TB,atrim=start=2,asetpts=PTS-STARTPTS,atrim=end=2,afade=t=in:st=0:d=0.5,afade=t=out:st=1:d=1,volume=0.5[at3]',
      '[1:a]aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo,asetpts=N/SR/TB,atrim=start=0,asetpts=PTS-STARTPTS,atrim=end=1,adelay=delays=1000:all=1[at4]',
      '[at3][at4]amix=inputs=2:normalize=0:duration=longest:dropout_transition=0,apad=whole_dur=2,atrim=start=0.5:end=1.5,asetpts=PTS-STARTPTS[a2]',
    ]);
  });

  it('a crossfade composes the scene on its own canvas during the transition and fades its alpha in; after it, on the movie canvas', () => {
    const p = plan([], {
      scenes: [
        { index: 0, startFrame: 0, endFrame: 36, background: '#000000', layers: [] },
        { index: 1, startFrame: 24, endFrame: 60, background: '#00a000', transition: { type: 'crossfade', frames: 12, easing: 'linear', direction: 'left' }, layers: [] },
      ],
    });
    const graphOf = (args: string[]) => args[args.indexOf('-filter_complex') + 1];
    const graph = graphOf(buildRenderArgs(p, { from: 0, to: 60 }, { format: 'png' }, 'f.png'));
    expect(graph.split(';')).toEqual([
      CANVAS,
      // its own canvas only for the 12 frames of the transition ...
      `color=c=0x00A000:s=320x180:r=30,format=rgb24,${RGB_TO_YUV},format=yuv420p,${ONCE},trim=end_frame=12,settb=expr=1/30,setpts=N+24[scene1]`,
      '[scene1]format=yuva420p,fade=t=in:st=0.8:d=0.4:alpha=1[xf2]',
      "[bg0][xf2]overlay=x='0':y='0':eof_action=pass[o3]",
      // ... then the scene's background straight on the movie's canvas, from frame 36 on
      `color=c=0x00A000:s=320x180:r=30,format=rgb24,${RGB_TO_YUV},format=yuv420p,${ONCE},trim=end_frame=24,settb=expr=1/30,setpts=N+36[scenebg4]`,
      "[o3][scenebg4]overlay=x='0':y='0':eof_action=pass[o5]",
      `[o5]${FINAL}[v6]`,
      '[v6]scale=in_color_matrix=bt709:in_range=tv,format=rgb24[rgb]',
    ]);
    // After the transition the scene needs no canvas of its own.
    const later = graphOf(buildRenderArgs(p, { from: 40, to: 60 }, { format: 'png' }, 'f.png'));
    expect(later).not.toContain('fade');
    expect(later).toContain(`color=c=0x00A000:s=320x180:r=30,format=rgb24,${RGB_TO_YUV},format=yuv420p,${ONCE},trim=end_frame=20,settb=expr=1/30,setpts=N+40[scenebg1]`);
  });

  it('refuses ranges outside the movie', () => {
    for (const range of [{ from: -1, to: 10 }, { from: 0, to: 61 }, { from: 10, to: 10 }, { from: 1.5, to: 3 }]) {
      expect(() => buildRenderArgs(plan([]), range, { format: 'mp4' }, 'o.mp4')).toThrow(/invalid frame range/);
    }
  });

  it('progress and threads are opt-in flags', () => {
    const args = buildRenderArgs(plan([]), { from: 0, to: 60 }, { format: 'mp4' }, 'o.mp4', { progress: true, threads: 2 });
    expect(args.slice(5, 8)).toEqual(['-progress', 'pipe:1', '-nostats']);
    expect(args[args.indexOf('-threads') + 1]).toBe('2');
  });
});

describe('ffColor', () => {
  it.each([
    ['#fff', '0xFFFFFF'],
    ['#ff000080', '0xFF000080'],
    ['#1a2b3c', '0x1A2B3C'],
    ['#abcd', '0xAABBCCDD'],
  ])('%s → %s', (hex, ff) => expect(ffColor(hex)).toBe(ff));
  it('refuses anything else, so nothing but hex digits reaches the graph', () => {
    for (const bad of ['red', '#ff000', "#fff';drawtext", '']) expect(() => ffColor(bad)).toThrow();
  });
});

describe('buildRemuxArgs and buildLiveMuxArgs', () => {
  it('remuxes a streamed file into the stored form without re-encoding', () => {
    expect(buildRemuxArgs('live.mp4', 'out.mp4', 'mp4')).toEqual([
      '-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-progress', 'pipe:1', '-nostats', '-copyts', '-i', 'live.mp4', '-map', '0', '-c', 'copy', '-movflags', '+faststart', '-f', 'mp4', 'out.mp4',
    ]);
    expect(buildRemuxArgs('live.webm', 'out.webm', 'webm').slice(-3)).toEqual(['-f', 'webm', 'out.webm']);
  });

  it('mixes the sound track once into a file of its own: AAC in MP4 for mp4, Opus in WebM for webm', () => {
    const audio = [{ id: 'a0', path: '/m.m4a', startFrame: 0, trimSec: 0, playSec: 2, volume: 1, fadeInSec: 0, fadeOutSec: 0, loop: false }];
    expect(buildSoundArgs(plan([], { audio }), 'sound.m4a', 'mp4')).toEqual([
      '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
      '-i', '/m.m4a',
      '-filter_complex',
      '[0:a]aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo,asetpts=N/SR/TB,atrim=start=0,asetpts=PTS-STARTPTS,atrim=end=2[at1];[at1]apad=whole_dur=2,atrim=start=0:end=2,asetpts=PTS-STARTPTS[a0]',
      '-map', '[a0]',
      '-c:a', 'aac', '-b:a', '160k', '-ar', '48000', '-ac', '2', '-f', 'mp4',
      'sound.m4a',
    ]);
    expect(buildSoundArgs(plan([], { audio }), 'sound.weba', 'webm').slice(-10)).toEqual(['-map', '[a0]', '-c:a', 'libopus', '-b:a', '128k', '-ar', '48000', '-ac', '2', '-f', 'webm', 'sound.weba'].slice(-10));
  });

  it('assembles piped video with the stored sound track: both copied, the sound keeping its own times', () => {
    expect(buildLiveMuxArgs('/s/sound.m4a', 'live.mp4')).toEqual([
      '-hide_banner', '-loglevel', 'error', '-y',
      '-copyts',
      '-i', '/s/sound.m4a',
      '-probesize', '32', '-analyzeduration', '0',
      '-f', 'mp4', '-i', 'pipe:0',
      '-map', '1:v', '-map', '0:a',
      '-c', 'copy', ...BT709, // the copied video is declared BT.709 again
      '-flush_packets', '1',
      '-frag_duration', '200000', '-movflags', 'frag_keyframe+empty_moov+default_base_moof+delay_moov',
      '-f', 'mp4', 'live.mp4',
    ]);
  });

  it('assembles piped IVF into live WebM with the stored Opus track, written a cluster (≤ 1 s) at a time', () => {
    const args = buildLiveMuxArgs('/s/sound.weba', 'live.webm', 'webm');
    expect(args.slice(args.indexOf('-probesize'), args.indexOf('-map'))).toEqual(['-probesize', '32', '-analyzeduration', '0', '-f', 'ivf', '-i', 'pipe:0']);
    expect(args.slice(args.indexOf('-map'))).toEqual([
      '-map', '1:v', '-map', '0:a',
      '-c', 'copy', ...BT709, // IVF says nothing of primaries and transfer
      '-flush_packets', '1', '-cluster_time_limit', '1000', '-cluster_size_limit', '1073741824', '-live', '1',
      '-f', 'webm', 'live.webm',
    ]);
  });

  it('a streamable webm is written as it is encoded: a write per packet, clusters of at most 1 s, keyframes every second', () => {
    const args = buildRenderArgs(plan([]), { from: 0, to: 60 }, { format: 'webm', streamable: true }, 'live.webm');
    expect(args[args.indexOf('-filter_complex') + 1].split(';').pop()).toBe('anullsrc=r=48000:cl=stereo:n=960,atrim=end=2[a2]'); // 20 ms Opus frames
    expect(args.slice(args.indexOf('-c:v'))).toEqual([
      ...VP9,
      '-c:a', 'libopus', '-b:a', '128k', '-ar', '48000', '-ac', '2',
      '-g', '30', '-keyint_min', '30',
      '-flush_packets', '1', '-cluster_time_limit', '1000', '-cluster_size_limit', '1073741824', '-live', '1',
      '-f', 'webm', 'live.webm',
    ]);
    // the stored (non-streamable) file needs none of it
    const stored = buildRenderArgs(plan([]), { from: 0, to: 60 }, { format: 'webm' }, 'o.webm');
    for (const flag of ['-flush_packets', '-cluster_time_limit', '-live', '-g']) expect(stored).not.toContain(flag);
  });

  it('webm segments are bare VP9 in IVF, with a keyframe every second, and never carry sound', () => {
    const args = buildRenderArgs(plan([]), { from: 15, to: 45 }, { format: 'webm', streamable: true, videoOnly: true, container: 'ivf' }, 'seg.ivf');
    expect(args.slice(args.indexOf('-c:v'))).toEqual([...VP9, '-g', '30', '-keyint_min', '30', '-flush_packets', '1', '-f', 'ivf', 'seg.ivf']);
    expect(() => buildRenderArgs(plan([]), { from: 0, to: 30 }, { format: 'webm', container: 'ivf' }, 'seg.ivf')).toThrow(/webm video only/);
    expect(() => buildRenderArgs(plan([]), { from: 0, to: 30 }, { format: 'mp4', videoOnly: true, container: 'ivf' }, 'seg.ivf')).toThrow(/webm video only/);
  });
});
