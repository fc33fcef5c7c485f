import type { AnimationSpec, ResolvedLayerSpec } from '../templates/movie.schema';
import type { Keyframe, KeyframeTracks } from './keyframes';
import { duckKeyframes } from './audio-envelopes';
import type { PlannedLook } from './layer-look';
import type { ResolvedMovie, ResolvedTransition, TimedLayer } from './resolve';
import { splitOptions, unitDelay } from './text-layout';

/** What the preparation step made of a layer's content: a raster, a clip, or nothing (solid). */
export type PreparedVisual =
  | {
      kind: 'still';
      path: string;
      /** Every pixel opaque: the graph may leave out its alpha. */
      opaque?: boolean;
      width: number;
      height: number;
      dx: number;
      dy: number;
      /** Text: the font size used, and the box's extent (from y + top to y + bottom) that a stacked layer follows. */
      text?: { size: number; top: number; bottom: number };
      /** A split text: each unit alone, and its background alone. */
      units?: PreparedPart[];
      textBackground?: PreparedPart;
    }
  | { kind: 'video'; path: string; width: number; height: number; durationSec: number; hasAudio: boolean }
  /** A clip rendered for the layer (Lottie): at the movie's fps and the layer's size, from the layer's first frame; `loop`: one pass, repeated. */
  | { kind: 'clip'; path: string; width: number; height: number; frames: number; loop: boolean }
  /** Timed stills of one size (captions): an ffconcat list whose time zero is movie frame `startFrame`. */
  | { kind: 'sequence'; list: string; startFrame: number; width: number; height: number; dx: number; dy: number };
/** A raster that is part of a layer, placed relative to the layer's box. */
export interface PreparedPart {
  path: string;
  width: number;
  height: number;
  dx: number;
  dy: number;
}
export interface PreparedAudio {
  path: string;
  durationSec: number;
}
/** Prepared media keyed by layer id (`s0.l1`) and audio track id (`a0`). */
export interface PreparedMedia {
  visuals: Record<string, PreparedVisual>;
  audio: Record<string, PreparedAudio>;
  /** Masks by layer id: grey PNGs the size of the layer's content. */
  masks?: Record<string, string>;
}

export type LayerSource =
  | { kind: 'color'; color: string }
  | { kind: 'still'; path: string; opaque?: boolean }
  | { kind: 'video'; path: string; trimStartSec: number; loop: boolean; clipSec: number }
  /**
   * Timed stills of one size, read once from an ffconcat list (gaps are a transparent still)
   * whose time zero is movie frame `startFrame`.
   */
  | { kind: 'sequence'; list: string; startFrame: number }
  /** Frames made by another engine (Blender), PNG after PNG on the encoder's stdin, one per movie frame of the range. */
  | { kind: 'frames' };

export interface KenBurns {
  from: { zoom: number; x: number; y: number };
  to: { zoom: number; x: number; y: number };
}

/** One visual layer, placed and timed, with everything the graph builder needs. */
export interface PlannedLayer {
  id: string;
  startFrame: number;
  endFrame: number;
  x: number;
  y: number;
  width: number;
  height: number;
  opacity: number;
  source: LayerSource;
  /** Fit applied to video frames (stills are prepared at their final size). */
  fit: 'cover' | 'contain' | 'fill';
  kenBurns?: KenBurns;
  animIn: AnimationSpec[];
  animOut: AnimationSpec[];
  /** Keyframes, mask, filters, blur, shadow, rotation, blend mode. */
  look?: PlannedLook;
}

export interface PlannedScene {
  index: number;
  startFrame: number;
  endFrame: number;
  background: string;
  transition?: ResolvedTransition;
  layers: PlannedLayer[];
}

export interface PlannedAudio {
  id: string;
  path: string;
  startFrame: number;
  trimSec: number;
  /** Seconds of the source that play, from trimSec (looping included). */
  playSec: number;
  volume: number;
  fadeInSec: number;
  fadeOutSec: number;
  loop: boolean;
  /** The track's gain over time, seconds from its start: replaces `volume`. */
  volumeKeyframes?: Keyframe[];
  /** Lowered while another track plays (its placement made into keyframes, seconds from this track's start). */
  duckKeyframes?: Keyframe[];
}

/** Everything needed to render any frame range of a movie. Pure data, JSON-serialisable. */
export interface RenderPlan extends Omit<ResolvedMovie, 'scenes' | 'audio'> {
  scenes: PlannedScene[];
  audio: PlannedAudio[];
}

const asList = (a: AnimationSpec | AnimationSpec[] | undefined) => (a === undefined ? [] : Array.isArray(a) ? a : [a]);

/** Resolved movie + prepared media → render plan. Pure. */
/** The movie reduced to what its sound comes from: audio tracks, and video clips (which may have sound). */
export function soundOf(movie: ResolvedMovie): ResolvedMovie {
  return { ...movie, scenes: movie.scenes.map((scene) => ({ ...scene, layers: scene.layers.filter((l) => l.spec.type === 'video') })) };
}

/**
 * The picture of frames [from, to), without sound: a segment prepares only the media of the
 * layers seen there (rasters, clips), and no audio track. Scenes stay, with their
 * backgrounds and transitions; the layers left out are the ones the filter graph of that
 * range skips anyway.
 */
export function pictureOf(movie: ResolvedMovie, range: { from: number; to: number }): ResolvedMovie {
  return {
    ...movie,
    audio: [],
    scenes: movie.scenes.map((scene) => ({ ...scene, layers: seenIn(scene.layers, range) })),
  };
}

/** The layers seen in a range, and the text layers that a stacked one seen there is placed below (their height places it). */
function seenIn(layers: TimedLayer[], range: { from: number; to: number }): TimedLayer[] {
  const keep = layers.map((l) => l.startFrame < range.to && l.endFrame > range.from);
  for (let i = layers.length - 1; i >= 0; i--) {
    const spec = layers[i].spec;
    if (!keep[i] || spec.type !== 'text' || !spec.stack) continue;
    for (let j = i - 1; j >= 0; j--) {
      if (layers[j].spec.type === 'text') {
        keep[j] = true;
        break;
      }
    }
  }
  return layers.filter((_, i) => keep[i]);
}

export function planRender(movie: ResolvedMovie, media: PreparedMedia): RenderPlan {
  const { fps, width: W, height: H } = movie;
  const scenes: PlannedScene[] = movie.scenes.map((scene) => ({
    index: scene.index,
    startFrame: scene.startFrame,
    endFrame: scene.endFrame,
    background: scene.background,
    transition: scene.transition,
    layers: scene.layers.map((layer): PlannedLayer => {
      const spec = layer.spec;
      const prepared = media.visuals[layer.id];
      const base = {
        id: layer.id,
        startFrame: layer.startFrame,
        endFrame: layer.endFrame,
        x: Math.round(spec.x ?? 0),
        y: Math.round(spec.y ?? 0),
        opacity: spec.opacity,
        fit: 'fill' as const,
        animIn: asList(spec.in),
        animOut: asList(spec.out),
        ...lookOf(spec, media.masks?.[layer.id]),
      };
      switch (spec.type) {
        case 'solid':
          return {
            ...base,
            width: even(spec.width ?? W - base.x),
            height: even(spec.height ?? H - base.y),
            source: { kind: 'color', color: spec.color },
          };
        case 'video': {
          if (prepared?.kind !== 'video') throw new Error(`layer ${layer.id}: no prepared clip`);
          return {
            ...base,
            width: even(spec.width ?? W),
            height: even(spec.height ?? H),
            fit: spec.fit,
            source: {
              kind: 'video',
              path: prepared.path,
              trimStartSec: spec.trim.start,
              loop: spec.loop,
              clipSec: Math.max(1 / fps, (spec.trim.end ?? prepared.durationSec) - spec.trim.start),
            },
          };
        }
        case 'lottie': {
          if (prepared?.kind !== 'clip') throw new Error(`layer ${layer.id}: no prepared clip`);
          // A video layer whose clip already has the box's size and the movie's frames.
          return {
            ...base,
            width: prepared.width,
            height: prepared.height,
            source: { kind: 'video', path: prepared.path, trimStartSec: 0, loop: prepared.loop, clipSec: prepared.frames / fps },
          };
        }
        case 'captions': {
          if (prepared?.kind !== 'sequence') throw new Error(`layer ${layer.id}: no prepared sequence`);
          // Left out, the box is bottom-centred: the stills are as wide as it, and as tall as the tallest cue.
          const x = spec.x ?? spec.margin;
          const y = spec.y ?? H - spec.margin - prepared.height;
          return {
            ...base,
            x: Math.round(x) + prepared.dx,
            y: Math.round(y) + prepared.dy,
            width: prepared.width,
            height: prepared.height,
            source: { kind: 'sequence', list: prepared.list, startFrame: prepared.startFrame },
          };
        }
        default: {
          if (prepared?.kind !== 'still') throw new Error(`layer ${layer.id}: no prepared raster`);
          const kenBurns = spec.type === 'image' ? spec.kenBurns : undefined;
          // A Ken Burns raster is larger than its box (prepared at the largest zoom); the box is the view.
          return {
            ...base,
            x: base.x + prepared.dx,
            y: base.y + prepared.dy,
            width: kenBurns ? even(spec.width ?? W) : prepared.width,
            height: kenBurns ? even(spec.height ?? H) : prepared.height,
            source: { kind: 'still', path: prepared.path, ...(prepared.opaque ? { opaque: true } : {}) },
            kenBurns,
          };
        }
      }
    }),
  }));
  placeText(movie, media, scenes);

  const audio: PlannedAudio[] = movie.audio.map((track) => {
    const prepared = media.audio[track.id];
    if (!prepared) throw new Error(`audio ${track.id}: not prepared`);
    const remaining = (movie.totalFrames - track.startFrame) / fps;
    const available = Math.max(0, prepared.durationSec - track.spec.trim);
    return {
      id: track.id,
      path: prepared.path,
      startFrame: track.startFrame,
      trimSec: track.spec.trim,
      playSec: Math.max(0, track.spec.loop ? remaining : Math.min(remaining, available)),
      volume: track.spec.volume,
      fadeInSec: track.spec.fadeIn,
      fadeOutSec: track.spec.fadeOut,
      loop: track.spec.loop,
      ...(track.spec.keyframes ? { volumeKeyframes: track.spec.keyframes.volume } : {}),
    };
  });
  movie.audio.forEach((track, i) => {
    const duck = track.spec.duck;
    const other = duck && audio[duck.under];
    if (!duck || !other) return;
    const keyframes = duckKeyframes(
      track.startFrame / fps,
      { startSec: other.startFrame / fps, playSec: other.playSec },
      { under: duck.under, to: duck.to, attackSec: duck.attack, releaseSec: duck.release },
    );
    if (keyframes.length) audio[i].duckKeyframes = keyframes;
  });

  // The sound of video clips that are not muted joins the mix like any other track.
  for (const scene of scenes) {
    for (const layer of scene.layers) {
      const prepared = media.visuals[layer.id];
      const spec = movie.scenes[scene.index].layers.find((l) => l.id === layer.id)?.spec;
      if (layer.source.kind !== 'video' || prepared?.kind !== 'video' || !prepared.hasAudio || spec?.type !== 'video' || spec.mute) continue;
      const layerSec = (layer.endFrame - layer.startFrame) / fps;
      audio.push({
        id: `${layer.id}.audio`,
        path: layer.source.path,
        startFrame: layer.startFrame,
        trimSec: layer.source.trimStartSec,
        playSec: layer.source.loop ? layerSec : Math.min(layerSec, layer.source.clipSec),
        volume: spec.volume,
        fadeInSec: 0,
        fadeOutSec: 0,
        loop: layer.source.loop,
        ...(spec.keyframes?.volume ? { volumeKeyframes: spec.keyframes.volume } : {}),
      });
    }
  }

  return { ...movie, scenes, audio };
}

type PreparedStill = Extract<PreparedVisual, { kind: 'still' }>;

/**
 * Text layers in place of the plain rasters planned for them: stacked ones below the text
 * above them (whose height is known only now), split ones as their units.
 */
function placeText(movie: ResolvedMovie, media: PreparedMedia, scenes: PlannedScene[]): void {
  scenes.forEach((planned, s) => {
    // Where the last text layer's box ends, for a text layer stacked below it.
    let above: { y: number; bottom: number } | undefined;
    planned.layers = planned.layers.flatMap((plannedLayer) => {
      const layer = movie.scenes[s].layers.find((l) => l.id === plannedLayer.id);
      const prepared = media.visuals[plannedLayer.id];
      if (layer?.spec.type !== 'text' || prepared?.kind !== 'still') return [plannedLayer];
      const spec = layer.spec;
      const extent = prepared.text ?? { top: 0, bottom: prepared.height + 2 * prepared.dy }; // a raster is its box, padded alike on every side
      const y = spec.stack && above ? above.y + above.bottom + Math.round(spec.stack.gap) - extent.top : Math.round(spec.y);
      above = { y, bottom: extent.bottom };
      return planText(layer, plannedLayer, prepared, y, movie.fps);
    });
  });
}

/** A pop's default entrance: each word scales in. */
export const POP_IN: AnimationSpec = { type: 'scale', duration: 0.3, easing: 'easeOut', direction: 'left', distance: 200 };

/**
 * A text layer (as `planned` like any raster) at `y`: one raster, or for a split text one layer per unit (`<id>.u<i>`, over
 * its background `<id>.bg`), each entering `stagger` seconds after the one before and, when
 * the layer has an `out`, leaving in the same order.
 */
export function planText(layer: TimedLayer, planned: PlannedLayer, prepared: PreparedStill, y: number, fps: number): PlannedLayer[] {
  const spec = layer.spec;
  if (spec.type !== 'text') throw new Error(`layer ${layer.id} is not text`);
  const x = Math.round(spec.x);
  // Everything else (timing, animations, looks) is the layer's as planned.
  const base = { ...planned, animIn: asList(spec.in), animOut: asList(spec.out) };
  const placed = (id: string, part: PreparedPart, extra: Partial<PlannedLayer> = {}): PlannedLayer => ({
    ...base,
    id,
    x: x + part.dx,
    y: y + part.dy,
    width: part.width,
    height: part.height,
    source: { kind: 'still', path: part.path },
    ...extra,
  });
  if (!spec.split || !prepared.units) return [placed(layer.id, prepared)];
  const split = splitOptions(spec.split);
  const animIn = split.preset === 'typewriter' ? [] : split.preset === 'pop' && !spec.in ? [POP_IN] : base.animIn;
  const n = prepared.units.length;
  const units = prepared.units.map((unit, i) => {
    const startFrame = Math.min(layer.endFrame - 1, layer.startFrame + unitDelay(i, split.stagger, fps));
    const leaves = base.animOut.length > 0 && split.preset !== 'typewriter';
    const endFrame = Math.max(startFrame + 1, layer.endFrame - (leaves ? unitDelay(n - 1 - i, split.stagger, fps) : 0));
    return placed(`${layer.id}.u${i}`, unit, { startFrame, endFrame, animIn });
  });
  const typewriter = split.preset === 'typewriter' ? { animIn: [], animOut: [] } : {};
  return [...(prepared.textBackground ? [placed(`${layer.id}.bg`, prepared.textBackground, typewriter)] : []), ...units];
}

/** A layer's looks for the graph; nothing when it has none (the graph stays as it was). */
function lookOf(spec: ResolvedLayerSpec, maskPath: string | undefined): { look?: PlannedLook } {
  if (!('blendMode' in spec)) return {};
  const look: PlannedLook = {};
  if (spec.keyframes && Object.keys(spec.keyframes).length) {
    const tracks: KeyframeTracks = {};
    for (const [name, track] of Object.entries(spec.keyframes)) {
      if (name === 'volume' || !track) continue; // a clip's sound: its PlannedAudio's
      // x and y keyframes are canvas positions like the layer's own x and y: kept as offsets from them.
      // A stacked text's y is where the text above ends, not its own: its y keyframes are offsets from there.
      const stacked = spec.type === 'text' && Boolean(spec.stack);
      const origin = name === 'x' ? spec.x : name === 'y' && !stacked ? spec.y : 0;
      tracks[name as keyof KeyframeTracks] = track.map((k) => ({ at: k.at, value: k.value - origin, ...(k.easing ? { easing: k.easing } : {}) }));
    }
    if (Object.keys(tracks).length) look.keyframes = tracks;
  }
  if (spec.rotation) look.rotation = spec.rotation;
  if (spec.blur) look.blur = spec.blur;
  if (spec.filters && Object.keys(spec.filters).length) look.filters = spec.filters;
  if (maskPath) look.maskPath = maskPath;
  if ('shadow' in spec && spec.shadow && spec.type !== 'text') look.shadow = spec.shadow;
  if (spec.blendMode !== 'normal') look.blendMode = spec.blendMode;
  return Object.keys(look).length ? { look } : {};
}

/** yuv420p needs even sizes. */
export function even(n: number): number {
  return Math.max(2, Math.round(n / 2) * 2);
}

/**
 * A movie whose picture comes whole from another engine (Blender): one scene with one layer,
 * the frames on stdin, over the canvas background (which shows where a frame is transparent).
 * `sound` is the movie's sound plan (or a plan without audio for video-only outputs).
 */
export function framesPlan(sound: RenderPlan): RenderPlan {
  const layer: PlannedLayer = {
    id: 'frames',
    startFrame: 0,
    endFrame: sound.totalFrames,
    x: 0,
    y: 0,
    width: sound.width,
    height: sound.height,
    opacity: 1,
    source: { kind: 'frames' },
    fit: 'fill',
    animIn: [],
    animOut: [],
  };
  return { ...sound, scenes: [{ index: 0, startFrame: 0, endFrame: sound.totalFrames, background: sound.background, layers: [layer] }] };
}
