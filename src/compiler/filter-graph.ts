import type { AnimationSpec } from '../templates/movie.schema';
import { expandHex } from './colors';
import { ease, easeExpr, num, progressExpr } from './easing';
import { keyframedGain } from './audio-envelopes';
import { keyframesExpr, sendcmdFilter, valueAt } from './keyframes';
import { type BlendMode, colorFilters, evenUp, hasStaticLook, type PlannedLook, rotatedSize, yuvOf } from './layer-look';
import type { PlannedAudio, PlannedLayer, PlannedScene, RenderPlan } from './render-plan';
import type { ResolvedTransition } from './resolve';

/** Frames [from, to) of a movie. */
export interface FrameRange {
  from: number;
  to: number;
}

/**
 * Colour: the graph is BT.709, limited range, as browsers assume for HD video. RGB (rasters,
 * colour sources) is converted with that matrix explicitly (swscale's default is BT.601), once
 * per input before it is repeated; every video output declares it.
 */
export const TO_YUV = 'scale=out_color_matrix=bt709:out_range=tv';
export const BT709_FRAMES = 'setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709';

/**
 * The filter graph of a frame range: every scene, layer, look, transition and sound track as
 * ffmpeg filter chains over absolute movie time (frame k has pts k in 1/fps), so a range
 * rendered alone gives the same frames as a whole render. Pure: strings and input lists.
 */
export class GraphBuilder {
  readonly inputs: string[][] = [];
  readonly chains: string[] = [];
  private labels = 0;
  private readonly fps: number;

  constructor(
    private readonly plan: RenderPlan,
    private range: FrameRange,
  ) {
    this.fps = plan.fps;
  }

  chain(text: string): void {
    this.chains.push(text);
  }

  /** Composites every scene that touches the range onto one canvas; returns the output label. */
  video(): string {
    const { plan, range } = this;
    let main = this.label('bg');
    this.chain(`${this.colorSource(plan.background, plan.width, plan.height, range.from, range.to - range.from, false)}[${main}]`);
    for (const scene of plan.scenes) {
      const first = Math.max(scene.startFrame, range.from);
      const last = Math.min(scene.endFrame, range.to);
      if (last <= first) continue;
      const t = scene.transition;
      const inTransition = t && first < scene.startFrame + t.frames;
      const direct = (from: number) => {
        if (scene.background !== plan.background) {
          const bg = this.label('scenebg');
          this.chain(`${this.colorSource(scene.background, plan.width, plan.height, from, last - from, false)}[${bg}]`);
          main = this.overlay(main, bg, '0', '0');
        }
        for (const layer of scene.layers) main = this.layer(main, layer);
      };
      if (inTransition) {
        // During the transition the scene is composed on its own canvas, so the transition moves
        // it as one picture; after it, on the movie's canvas like any scene (a second canvas
        // there would cost a full-frame blend on every frame for nothing).
        const end = Math.min(last, scene.startFrame + t.frames);
        const whole = this.range;
        this.range = { from: first, to: end };
        let sub = this.label('scene');
        this.chain(`${this.colorSource(scene.background, plan.width, plan.height, first, end - first, false)}[${sub}]`);
        for (const layer of scene.layers) sub = this.layer(sub, layer);
        main = this.transition(main, sub, scene, t);
        this.range = { from: end, to: whole.to };
        if (last > end) direct(end);
        this.range = whole;
      } else {
        direct(first);
      }
    }
    const out = this.label('v');
    this.chain(`[${main}]setpts=PTS-STARTPTS,format=yuv420p,${BT709_FRAMES}[${out}]`);
    return out;
  }

  /** Mixes every track once over the whole movie, then cuts the range; silence if there are none. */
  audio(silenceFrameSamples?: number): string {
    const { plan, range } = this;
    const out = this.label('a');
    const startSec = range.from / this.fps;
    const endSec = range.to / this.fps;
    const tracks = plan.audio.filter((a) => a.playSec > 0);
    if (tracks.length === 0) {
      this.chain(`anullsrc=r=48000:cl=stereo${silenceFrameSamples ? `:n=${silenceFrameSamples}` : ''},atrim=end=${num(endSec - startSec)}[${out}]`);
      return out;
    }
    const labels = tracks.map((track) => this.audioTrack(track));
    const mix =
      labels.length === 1
        ? `[${labels[0]}]`
        : `${labels.map((l) => `[${l}]`).join('')}amix=inputs=${labels.length}:normalize=0:duration=longest:dropout_transition=0,`;
    // pad to the movie's length first, so a range past the last sound is silence, not nothing
    this.chain(
      `${mix}apad=whole_dur=${num(plan.totalFrames / this.fps)},atrim=start=${num(startSec)}:end=${num(endSec)},asetpts=PTS-STARTPTS[${out}]`,
    );
    return out;
  }

  private audioTrack(track: PlannedAudio): string {
    const idx = this.input([...(track.loop ? ['-stream_loop', '-1'] : []), '-i', track.path]);
    const label = this.label('at');
    const filters = [
      'aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo',
      // Time from the samples themselves: a looped AAC source jumps a frame (its priming) at every
      // loop, which would leave holes in the track and cut it short of its length.
      'asetpts=N/SR/TB',
      `atrim=start=${num(track.trimSec)}`,
      'asetpts=PTS-STARTPTS',
      `atrim=end=${num(track.playSec)}`,
    ];
    if (track.fadeInSec > 0) filters.push(`afade=t=in:st=0:d=${num(Math.min(track.fadeInSec, track.playSec))}`);
    if (track.fadeOutSec > 0) {
      const d = Math.min(track.fadeOutSec, track.playSec);
      filters.push(`afade=t=out:st=${num(track.playSec - d)}:d=${num(d)}`);
    }
    // Before the delay, `t` is seconds from the track's start: the time of its keyframes.
    if (track.volumeKeyframes) filters.push(...keyframedGain(track.volumeKeyframes));
    else if (track.volume !== 1) filters.push(`volume=${num(track.volume)}`);
    if (track.duckKeyframes) filters.push(...keyframedGain(track.duckKeyframes));
    const delayMs = Math.round((track.startFrame / this.fps) * 1000);
    if (delayMs > 0) filters.push(`adelay=delays=${delayMs}:all=1`);
    this.chain(`[${idx}:a]${filters.join(',')}[${label}]`);
    return label;
  }

  /** Overlays one layer (if it is visible in the range) on `base`; returns the new base. */
  private layer(base: string, layer: PlannedLayer): string {
    const first = Math.max(layer.startFrame, this.range.from);
    const last = Math.min(layer.endFrame, this.range.to);
    if (last <= first) return base;
    const count = last - first;
    const startSec = layer.startFrame / this.fps;
    const endSec = layer.endFrame / this.fps;
    const look = layer.look ?? {};
    const filters: string[] = [];
    // Where the content sits relative to the layer's box: looks (blur, shadow, rotation) grow it.
    const geo: Geometry = { w: layer.width, h: layer.height, ox: 0, oy: 0 };
    const repeat = this.repeat(first, count);
    const timed = { first, count };
    let head: string;
    const src = layer.source;
    if (src.kind === 'color' || src.kind === 'still') {
      // Convert once, then repeat the same frame: the source is decoded and its looks applied a single time.
      // An opaque picture under a Ken Burns is resampled without alpha (three planes, not four)
      // and given its alpha after; overlay takes its top input with alpha only (it would convert).
      const opaque = src.kind === 'still' && src.opaque === true && Boolean(layer.kenBurns) && !hasStaticLook(look);
      const once =
        src.kind === 'color'
          ? this.colorOnce(src.color, layer.width, layer.height, true)
          : `[${this.input(['-i', src.path])}:v]${TO_YUV},format=${opaque ? 'yuv420p' : 'yuva420p'}`;
      if (hasStaticLook(look) && !layer.kenBurns) {
        const raw = this.label('raw');
        this.chain(`${once}[${raw}]`);
        head = `[${this.staticLook(raw, look, geo)}]${repeat}`;
      } else {
        head = `${once},${repeat}`;
        if (layer.kenBurns) filters.push(...this.kenBurns(layer, startSec, endSec, first));
      }
      if (opaque) filters.push('format=yuva420p');
    } else if (src.kind === 'frames') {
      // One PNG per frame of the range, in order: numbered from the range's first frame like every other stream.
      const idx = this.input(['-f', 'png_pipe', '-framerate', String(this.fps), '-i', 'pipe:0']);
      // Scaled to the layer's box: a frame of another size (a .blend's own border or scale) never shifts the picture.
      head = `[${idx}:v]scale=${layer.width}:${layer.height}:out_color_matrix=bt709:out_range=tv,format=yuva420p,trim=end_frame=${count},settb=expr=1/${this.fps},setpts=N+${first}`;
    } else if (src.kind === 'sequence') {
      // One input for every still: each is converted once, `fps` repeats it over its frames,
      // and the range is cut by frame number from the list's time zero.
      const idx = this.input(['-f', 'concat', '-safe', '0', '-i', src.list]);
      const skip = first - src.startFrame;
      head = `[${idx}:v]${TO_YUV},format=yuva420p,fps=${this.fps},trim=start_frame=${skip}:end_frame=${skip + count},settb=expr=1/${this.fps},setpts=N+${first}`;
    } else {
      const offsetSec = (first - layer.startFrame) / this.fps;
      const position = src.loop ? (src.trimStartSec + offsetSec) % src.clipSec : src.trimStartSec + offsetSec;
      const inputArgs = src.loop
        ? ['-stream_loop', '-1', '-ss', num(position), '-i', src.path]
        : ['-ss', num(position), '-t', num(Math.max(1 / this.fps, src.clipSec - offsetSec)), '-i', src.path];
      const idx = this.input(inputArgs);
      const { width: w, height: h } = layer;
      const fit =
        layer.fit === 'cover'
          ? `scale=${w}:${h}:force_original_aspect_ratio=increase,crop=${w}:${h}`
          : layer.fit === 'contain'
            ? `scale=${w}:${h}:force_original_aspect_ratio=decrease,pad=${w}:${h}:(ow-iw)/2:(oh-ih)/2:color=black@0`
            : `scale=${w}:${h}`;
      // A clip's YUV is taken as BT.709 (what browsers assume of untagged HD) and kept: converting
      // other matrices costs a per-frame pass. RGB clips are converted like rasters.
      head = `[${idx}:v]fps=${this.fps},scale=in_color_matrix=bt709:out_color_matrix=bt709:out_range=tv,format=yuva420p,${fit},trim=end_frame=${count},settb=expr=1/${this.fps},setpts=N+${first}`;
    }
    // Frames that change every frame (clips, Ken Burns views) take their looks frame by frame.
    if (hasStaticLook(look) && (layer.kenBurns || src.kind === 'video' || src.kind === 'frames')) {
      const moving = this.label('raw');
      this.chain(`${[head, ...filters.splice(0)].join(',')}[${moving}]`);
      head = `[${this.staticLook(moving, look, geo, timed)}]null`;
    }

    const kf = look.keyframes ?? {};
    if (kf.x || kf.y || kf.scale || kf.rotation || kf.blur || kf.opacity || layer.animIn.concat(layer.animOut).some((a) => a.type === 'fade' && (a.easing ?? 'linear') !== 'linear')) {
      return this.keyframedLayer(base, layer, head, filters, geo, { first, last, startSec, endSec });
    }

    if (layer.opacity < 1) filters.push(`lut=a='val*${num(layer.opacity)}'`);
    for (const a of layer.animIn.filter((a) => a.type === 'fade')) {
      filters.push(`fade=t=in:st=${num(startSec)}:d=${num(a.duration)}:alpha=1`);
    }
    for (const a of layer.animOut.filter((a) => a.type === 'fade')) {
      filters.push(`fade=t=out:st=${num(endSec - a.duration)}:d=${num(a.duration)}:alpha=1`);
    }
    const scaleIn = layer.animIn.find((a) => a.type === 'scale');
    const scaleOut = layer.animOut.find((a) => a.type === 'scale');
    let x = String(layer.x + geo.ox);
    let y = String(layer.y + geo.oy);
    if (scaleIn || scaleOut) {
      const k = [
        scaleIn ? `(0.05+0.95*${easeExpr(scaleIn.easing ?? 'easeOut', progressExpr(startSec, scaleIn.duration))})` : '',
        scaleOut ? `(1-0.95*${easeExpr(scaleOut.easing ?? 'easeOut', progressExpr(endSec - scaleOut.duration, scaleOut.duration))})` : '',
      ]
        .filter(Boolean)
        .join('*');
      filters.push(`scale=w='max(2,trunc(${geo.w}*${k}/2)*2)':h='max(2,trunc(${geo.h}*${k}/2)*2)':eval=frame`);
      // keep the layer centred on its box while it grows or shrinks
      x += `+(${geo.w}-overlay_w)/2`;
      y += `+(${geo.h}-overlay_h)/2`;
    }
    for (const a of layer.animIn.filter((a) => a.type === 'slide')) {
      const [dx, dy] = slideOffset(a, 'in', `(1-${easeExpr(a.easing ?? 'easeOut', progressExpr(startSec, a.duration))})`);
      x += dx;
      y += dy;
    }
    for (const a of layer.animOut.filter((a) => a.type === 'slide')) {
      const [dx, dy] = slideOffset(a, 'out', easeExpr(a.easing ?? 'easeOut', progressExpr(endSec - a.duration, a.duration)));
      x += dx;
      y += dy;
    }
    const label = this.label('l');
    this.chain(`${[head, ...filters].join(',')}[${label}]`);
    return this.place(base, label, x, y, look.blendMode, timed);
  }

  /**
   * A layer whose properties follow keyframes (or eased fades). Position, scale and rotation are
   * expressions of time that overlay, scale and rotate evaluate per frame; opacity and blur have
   * no time expression in their filters (lut, gblur), so their values are computed here for each
   * frame, with the exact curve, and sent by one `sendcmd`. Slides and scales of `in`/`out`
   * combine with the keyframes.
   */
  private keyframedLayer(
    base: string,
    layer: PlannedLayer,
    head: string,
    filters: string[],
    geo: Geometry,
    t: { first: number; last: number; startSec: number; endSec: number },
  ): string {
    const kf = layer.look?.keyframes ?? {};
    const id = this.label('k');
    const secOf = (frame: number) => frame / this.fps;
    const rel = (frame: number) => secOf(frame) - t.startSec;
    const progress = (frame: number, from: number, dur: number) => Math.min(1, Math.max(0, (secOf(frame) - from) / dur));

    const opacityAt = (frame: number) => {
      let o = layer.opacity * (kf.opacity ? Math.min(1, Math.max(0, valueAt(kf.opacity, rel(frame)))) : 1);
      for (const a of layer.animIn.filter((a) => a.type === 'fade')) o *= ease(a.easing ?? 'linear', progress(frame, t.startSec, a.duration));
      for (const a of layer.animOut.filter((a) => a.type === 'fade')) o *= 1 - ease(a.easing ?? 'linear', progress(frame, t.endSec - a.duration, a.duration));
      return Math.round(Math.min(1, Math.max(0, o)) * 1000) / 1000;
    };
    // gblur set up with sigma 0 allocates nothing and breaks when a command raises it: 0.01 is "no blur".
    const blurAt = (frame: number) => (kf.blur ? Math.max(0.01, Math.round(valueAt(kf.blur, rel(frame)) * 100) / 100) : 0);

    const named: string[] = [];
    if (kf.blur) {
      // Room for the blur to spread beyond the content's edges.
      const pad = evenUp(2 * Math.max(...kf.blur.map((k) => k.value)));
      named.push(`pad=${geo.w + 2 * pad}:${geo.h + 2 * pad}:${pad}:${pad}:color=black@0`, `gblur@${id}=sigma=${num(blurAt(t.first))}:sigmaV=${num(blurAt(t.first))}`);
      Object.assign(geo, { w: geo.w + 2 * pad, h: geo.h + 2 * pad, ox: geo.ox - pad, oy: geo.oy - pad });
    }
    if (kf.rotation) {
      // A square as wide as the diagonal holds every angle: the centre stays put. Filled with
      // clear black, not c=none: that leaves the corners as the reused buffer had them (earlier frames).
      const d = evenUp(Math.hypot(geo.w, geo.h));
      named.push(`rotate=a='${keyframesExpr(kf.rotation, t.startSec)}*PI/180':ow=${d}:oh=${d}:c=black@0`);
      Object.assign(geo, { ox: geo.ox - (d - geo.w) / 2, oy: geo.oy - (d - geo.h) / 2, w: d, h: d });
    }
    const scaleIn = layer.animIn.find((a) => a.type === 'scale');
    const scaleOut = layer.animOut.find((a) => a.type === 'scale');
    const k = [
      kf.scale ? `max(0,${keyframesExpr(kf.scale, t.startSec)})` : '',
      scaleIn ? `(0.05+0.95*${easeExpr(scaleIn.easing ?? 'easeOut', progressExpr(t.startSec, scaleIn.duration))})` : '',
      scaleOut ? `(1-0.95*${easeExpr(scaleOut.easing ?? 'easeOut', progressExpr(t.endSec - scaleOut.duration, scaleOut.duration))})` : '',
    ]
      .filter(Boolean)
      .join('*');
    // The opacity pass runs only on frames where the layer is see-through: elsewhere it would
    // rewrite every frame of a repeated still for nothing (a timeline `enable`, in movie time).
    const dimmed: Array<[number, number]> = [];
    for (let frame = t.first; frame < t.last; frame++) {
      if (opacityAt(frame) >= 1) continue;
      const last = dimmed[dimmed.length - 1];
      if (last && last[1] === frame) last[1] = frame + 1;
      else dimmed.push([frame, frame + 1]);
    }
    const when = dimmed.map(([a, b]) => `between(t,${num((a - 0.5) / this.fps)},${num((b - 0.5) / this.fps)})`).join('+');
    // Opacity before the scale: filters after a scale that changes size each frame must not keep state per size.
    if (dimmed.length) named.push(`lut@${id}=a='val*${num(opacityAt(t.first))}':enable='${when}'`);
    if (k) named.push(`scale=w='max(2,trunc(${geo.w}*${k}/2)*2)':h='max(2,trunc(${geo.h}*${k}/2)*2)':eval=frame`);

    // Position: the content stays centred on its box, keyframes move the box, slides add theirs.
    let x = `${num(layer.x + geo.ox)}+(${geo.w}-overlay_w)/2`;
    let y = `${num(layer.y + geo.oy)}+(${geo.h}-overlay_h)/2`;
    if (kf.x) x += `+${keyframesExpr(kf.x, t.startSec)}`;
    if (kf.y) y += `+${keyframesExpr(kf.y, t.startSec)}`;
    for (const a of layer.animIn.filter((a) => a.type === 'slide')) {
      const [dx, dy] = slideOffset(a, 'in', `(1-${easeExpr(a.easing ?? 'easeOut', progressExpr(t.startSec, a.duration))})`);
      x += dx;
      y += dy;
    }
    for (const a of layer.animOut.filter((a) => a.type === 'slide')) {
      const [dx, dy] = slideOffset(a, 'out', easeExpr(a.easing ?? 'easeOut', progressExpr(t.endSec - a.duration, a.duration)));
      x += dx;
      y += dy;
    }
    const commands = sendcmdFilter(this.fps, t.first, t.last, (frame) => [
      // sigmaV too: gblur copies sigma into it once, at setup, so a command on sigma alone blurs across only.
      ...(kf.blur ? [`gblur@${id} sigma ${num(blurAt(frame))}`, `gblur@${id} sigmaV ${num(blurAt(frame))}`] : []),
      ...(dimmed.length ? [`lut@${id} a val*${num(opacityAt(frame))}`] : []),
    ]);
    const label = this.label('l');
    this.chain(`${[head, ...filters, ...(commands ? [commands] : []), ...named].join(',')}[${label}]`);
    return this.place(base, label, x, y, layer.look?.blendMode, { first: t.first, count: t.last - t.first });
  }

  /**
   * Looks that do not change over time, applied to `input` (one frame for stills and colours,
   * every frame otherwise): mask, colour filters, blur, drop shadow, rotation. `geo` grows with them.
   */
  private staticLook(input: string, look: PlannedLook, geo: Geometry, timed?: { first: number; count: number }): string {
    let cur = input;
    const step = (text: string) => {
      const out = this.label('look');
      this.chain(`[${cur}]${text}[${out}]`);
      cur = out;
    };
    if (look.maskPath) {
      const m = this.input(['-i', look.maskPath]);
      const mask = this.label('mask');
      const again = timed ? `,${this.repeat(timed.first, timed.count)}` : '';
      this.chain(`[${m}:v]format=gray,scale=${geo.w}:${geo.h}${again}[${mask}]`);
      const [keep, alpha, product, out] = [this.label('mk'), this.label('ma'), this.label('mp'), this.label('look')];
      // The layer's own alpha times the mask: text keeps its edges inside the mask.
      this.chain(`[${cur}]split[${keep}][${alpha}]`);
      this.chain(`[${alpha}]alphaextract[${alpha}x]`);
      this.chain(`[${alpha}x][${mask}]blend=all_mode=multiply[${product}]`);
      this.chain(`[${keep}][${product}]alphamerge[${out}]`);
      cur = out;
    }
    const colour = look.filters ? colorFilters(look.filters) : [];
    if (colour.length) step(colour.join(','));
    if (look.blur) {
      const pad = evenUp(2 * look.blur);
      step(`pad=${geo.w + 2 * pad}:${geo.h + 2 * pad}:${pad}:${pad}:color=black@0,gblur=sigma=${num(look.blur)}`);
      Object.assign(geo, { w: geo.w + 2 * pad, h: geo.h + 2 * pad, ox: geo.ox - pad, oy: geo.oy - pad });
    }
    if (look.shadow) {
      const sh = look.shadow;
      const m = evenUp(2 * sh.blur + Math.max(Math.abs(sh.x), Math.abs(sh.y)));
      const c = yuvOf(sh.color);
      const [keep, cast, shadow, out] = [this.label('sk'), this.label('sc'), this.label('sh'), this.label('look')];
      this.chain(`[${cur}]split[${keep}][${cast}]`);
      // The content's silhouette in the shadow's colour, moved, softened; the content on top.
      this.chain(
        `[${cast}]lut=y=${c.y}:u=${c.u}:v=${c.v}:a='val*${num(Math.round(c.a * 1000) / 1000)}',pad=${geo.w + 2 * m}:${geo.h + 2 * m}:${m + Math.round(sh.x)}:${m + Math.round(sh.y)}:color=black@0${sh.blur > 0 ? `,gblur=sigma=${num(sh.blur / 2)}` : ''}[${shadow}]`,
      );
      this.chain(`[${shadow}][${keep}]overlay=x=${m}:y=${m}:eof_action=pass[${out}]`);
      cur = out;
      Object.assign(geo, { w: geo.w + 2 * m, h: geo.h + 2 * m, ox: geo.ox - m, oy: geo.oy - m });
    }
    if (look.rotation) {
      const size = rotatedSize(geo.w, geo.h, look.rotation);
      step(`rotate=a=${num((look.rotation * Math.PI) / 180)}:ow=${size.w}:oh=${size.h}:c=black@0`);
      Object.assign(geo, { ox: geo.ox - (size.w - geo.w) / 2, oy: geo.oy - (size.h - geo.h) / 2, w: size.w, h: size.h });
    }
    return cur;
  }

  /**
   * Puts a layer on the base: an overlay, or for a blend mode other than normal, the blend of the
   * layer's colours with the base's (in RGB: the modes are defined there), shown where the layer is.
   */
  private place(base: string, top: string, x: string, y: string, mode: BlendMode | undefined, timed: { first: number; count: number }): string {
    if (!mode || mode === 'normal') return this.overlay(base, top, x, y);
    const { width: W, height: H } = this.plan;
    const canvas = this.label('bcanvas');
    this.chain(`${this.colorSource('#00000000', W, H, timed.first, timed.count, true)}[${canvas}]`);
    const placed = this.overlay(canvas, top, x, y);
    const [b1, b2, l1, l2, bRgb, lRgb, alpha, mixed, out] = ['bb', 'bk', 'lc', 'la', 'brgb', 'lrgb', 'lalpha', 'mixed', 'blended'].map((p) => this.label(p));
    const toRgb = 'scale=in_color_matrix=bt709:in_range=tv,format=gbrp';
    this.chain(`[${base}]split[${b1}][${b2}]`);
    this.chain(`[${placed}]split[${l1}][${l2}]`);
    // Only the base's frames under the layer go through RGB: elsewhere the base must stay as it is
    // (a round trip would change every frame before the layer, and a range rendered alone would differ).
    this.chain(`[${b1}]trim=start_pts=${timed.first}:end_pts=${timed.first + timed.count},${toRgb}[${bRgb}]`);
    this.chain(`[${l1}]${toRgb}[${lRgb}]`);
    this.chain(`[${l2}]alphaextract[${alpha}]`);
    // shortest: once the layer ends, blend would repeat its last frame over the base.
    this.chain(`[${bRgb}][${lRgb}]blend=all_mode=${mode}:shortest=1,${TO_YUV},format=yuva420p[${mixed}]`);
    this.chain(`[${mixed}][${alpha}]alphamerge[${out}]`);
    return this.overlay(b2, out, '0', '0');
  }

  /**
   * Ken Burns: the raster is the box at the largest zoom. Each frame, the view (a rectangle of
   * fractional size and place) is resampled onto the raster's size by perspective (bilinear),
   * then scaled to the box: motion is sub-pixel, so a slow zoom or pan glides instead of holding
   * an edge for frames and jumping a pixel (scale + crop snap sizes and places to even pixels).
   * perspective has no `t`: time is its input frame count `in` (from 1) plus the range's first frame.
   */
  private kenBurns(layer: PlannedLayer, startSec: number, endSec: number, first: number): string[] {
    const kb = layer.kenBurns!;
    // perspective counts its input frames from 1.
    const time = `((in-1+${first})/${this.fps})`;
    const p = progressExpr(startSec, Math.max(1 / this.fps, endSec - startSec - 1 / this.fps), time);
    const lerp = (a: number, b: number) => (a === b ? num(a) : `(${num(a)}+${num(b - a)}*${p})`);
    const zoom = lerp(kb.from.zoom, kb.to.zoom);
    // The view in raster pixels: W/zoom wide (the raster is the picture at the largest zoom), placed by the focus.
    const [vw, vh] = [`W/${zoom}`, `H/${zoom}`];
    const [left, top] = [`(W-${vw})*${lerp(kb.from.x, kb.to.x)}`, `(H-${vh})*${lerp(kb.from.y, kb.to.y)}`];
    const [right, bottom] = [`${left}+${vw}`, `${top}+${vh}`];
    return [
      `perspective=x0='${left}':y0='${top}':x1='${right}':y1='${top}':x2='${left}':y2='${bottom}':x3='${right}':y3='${bottom}':interpolation=linear:eval=frame`,
      `scale=${layer.width}:${layer.height}`,
    ];
  }

  private transition(main: string, scene: string, spec: PlannedScene, t: ResolvedTransition): string {
    const { width: W, height: H } = this.plan;
    const startSec = spec.startFrame / this.fps;
    const durSec = t.frames / this.fps;
    const e = easeExpr(t.easing, progressExpr(startSec, durSec));
    if (t.type === 'crossfade') {
      const faded = this.label('xf');
      this.chain(`[${scene}]format=yuva420p,fade=t=in:st=${num(startSec)}:d=${num(durSec)}:alpha=1[${faded}]`);
      return this.overlay(main, faded, '0', '0');
    }
    // Where the incoming picture (slide) or the revealing window (wipe) is at progress e:
    // a canvas away on the side it comes from, travelling in the transition's direction.
    const [x, y] = {
      left: [`${W}*(1-${e})`, '0'],
      right: [`-${W}*(1-${e})`, '0'],
      up: ['0', `${H}*(1-${e})`],
      down: ['0', `-${H}*(1-${e})`],
    }[t.direction];
    if (t.type === 'slide') return this.overlay(main, scene, x, y);
    // wipe: a white window moving over a black mask becomes the new scene's alpha
    const first = Math.max(spec.startFrame, this.range.from);
    const count = Math.min(spec.endFrame, this.range.to) - first;
    const black = this.label('mask');
    const white = this.label('win');
    this.chain(`${this.colorSource('#000000', W, H, first, count, false)}[${black}]`);
    this.chain(`${this.colorSource('#ffffff', W, H, first, count, false)}[${white}]`);
    const mask = this.overlay(black, white, x, y);
    const gray = this.label('alpha');
    const masked = this.label('wiped');
    this.chain(`[${mask}]format=gray[${gray}]`);
    this.chain(`[${scene}][${gray}]alphamerge[${masked}]`);
    return this.overlay(main, masked, '0', '0');
  }

  private overlay(base: string, top: string, x: string, y: string): string {
    const out = this.label('o');
    this.chain(`[${base}][${top}]overlay=x='${x}':y='${y}':eof_action=pass[${out}]`);
    return out;
  }

  /**
   * A solid colour for frames [first, first+count): absolute timestamps like every other stream.
   * Drawn in RGB (the source's own YUV is BT.601), converted once, then repeated.
   */
  private colorSource(color: string, w: number, h: number, first: number, count: number, alpha: boolean): string {
    return `${this.colorOnce(color, w, h, alpha)},${this.repeat(first, count)}`;
  }

  /** One frame of a solid colour in the graph's YUV. */
  private colorOnce(color: string, w: number, h: number, alpha: boolean): string {
    return `color=c=${ffColor(color)}:s=${w}x${h}:r=${this.fps},format=${alpha ? 'rgba' : 'rgb24'},${TO_YUV},format=${alpha ? 'yuva420p' : 'yuv420p'}`;
  }

  /** One frame repeated as frames [first, first+count), numbered in movie time like every other stream. */
  private repeat(first: number, count: number): string {
    return `loop=loop=-1:size=1:start=0,trim=end_frame=${count},settb=expr=1/${this.fps},setpts=N+${first}`;
  }

  private input(args: string[]): number {
    this.inputs.push(args);
    return this.inputs.length - 1;
  }

  private label(prefix: string): string {
    return `${prefix}${this.labels++}`;
  }
}

/**
 * Offset of a sliding layer: `amount` is 1 at the far point and 0 at the layer's place. The
 * direction is the way the layer travels, as for transitions: sliding in `left`, it comes from the
 * right; sliding out `left`, it leaves to the left.
 */
function slideOffset(a: AnimationSpec, phase: 'in' | 'out', amount: string): [string, string] {
  const d = num(a.distance);
  const towards = phase === 'in' ? { left: '+', right: '-', up: '+', down: '-' } : { left: '-', right: '+', up: '-', down: '+' };
  const sign = towards[a.direction];
  return a.direction === 'left' || a.direction === 'right' ? [`${sign}${d}*${amount}`, ''] : ['', `${sign}${d}*${amount}`];
}

/** Size of a layer's content and where it sits relative to the layer's box. */
interface Geometry {
  w: number;
  h: number;
  ox: number;
  oy: number;
}

/** `#rgb`, `#rrggbb`, `#rrggbbaa` → ffmpeg's `0xRRGGBB[AA]`. */
export function ffColor(hex: string): string {
  const h = expandHex(hex);
  if (!/^[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$/.test(h)) throw new Error(`not a colour: ${hex}`);
  return `0x${h.toUpperCase()}`;
}
