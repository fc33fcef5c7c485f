import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { badInput, type ErrorDetail } from '../common/errors';
import type { Direction, Easing, ResolvedAudioSpec, ResolvedLayerSpec } from '../templates/movie.schema';
import { explainIssue, resolvedAudioSchema, resolvedSceneSchema } from '../templates/movie.schema';
import { FONT_FILE } from '../templates/font-names';
import { xmlProblem } from '../templates/svg-check';
import type { CaptionCue } from '../captions/caption-cues';
import { captionCues, placeCues } from '../captions/caption-source';
import { SubtitleError } from '../captions/subtitle-parser';
import type { LoadedTemplate } from '../templates/template.types';
import { createHandlebarsEnv, templateFunctions, type TemplateFunctions } from './handlebars-env';
import { LOCAL_FILE_URL, type ParamValue, type Params } from './params';
import { unorderedKeyframe } from './keyframes';
import { shapeSvg } from './shapes';
import { defaultPosterFrame } from './poster';
import { resolveBlenderScene, type ResolvedBlenderScene } from './resolve-blender';
import { MAX_TEXT_UNITS, splitOptions, textUnits } from './text-layout';

/** Where a layer's or track's media comes from: a URL to fetch, or a file shipped with the template. */
export type MediaRef = { kind: 'url'; url: string } | { kind: 'file'; path: string };

export interface TimedLayer {
  /** Stable id within the movie, e.g. `s1.l2`: scene 1, layer 2. */
  id: string;
  /** Absolute frames [startFrame, endFrame) of the movie. */
  startFrame: number;
  endFrame: number;
  spec: ResolvedLayerSpec;
  /** image and video layers */
  media?: MediaRef;
  /** svg layers: the markup after Handlebars */
  svg?: string;
  /** text and caption layers with a font file shipped in the template */
  fontFile?: string;
  /** lottie layers: the JSON file (absolute, and relative to the template with the template's files, for its assets), and the `file:line` its problems are reported at */
  lottie?: { file: string; rel: string; templateFiles: readonly string[]; field: string };
  /** caption layers: the cues at movie time (seconds), cut to the layer's frames */
  captions?: CaptionCue[];
  /** layers masked by an image's alpha */
  maskMedia?: MediaRef;
}

export interface ResolvedTransition {
  type: 'crossfade' | 'wipe' | 'slide';
  frames: number;
  easing: Easing;
  direction: Direction;
}

export interface ResolvedScene {
  index: number;
  name: string;
  startFrame: number;
  endFrame: number;
  background: string;
  /** How this scene enters over the previous one, during its first `frames` frames. */
  transition?: ResolvedTransition;
  layers: TimedLayer[];
}

export interface ResolvedAudio {
  id: string;
  media: MediaRef;
  startFrame: number;
  spec: ResolvedAudioSpec;
}

/** A movie with every param applied and every time in frames. Pure data. */
export interface ResolvedMovie {
  templateId: string;
  version: string;
  width: number;
  height: number;
  fps: number;
  totalFrames: number;
  background: string;
  posterFrame: number;
  scenes: ResolvedScene[];
  audio: ResolvedAudio[];
  /** What renders the picture; a Blender movie has no scenes but its scene and bindings. */
  engine?: 'ffmpeg-composite' | 'blender';
  /**
   * Which params shape what (sorted names): per scene (its own fields, and what made it: an
   * `each` list or range), per layer id (its fields, its SVG, its captions source). What cuts
   * a movie into reusable segments: frames whose layers read the same params render alike.
   */
  paramUse?: { scenes: string[][]; layers: Record<string, string[]> };
  blender?: ResolvedBlenderScene;
}

/**
 * Applies params to a loaded template: Handlebars on string leaves (never on structure),
 * `each` scenes expanded once per list item, every value checked again strictly, every time
 * turned into frames. Pure: no I/O, the same inputs always give the same movie.
 */
export interface ResolveOptions {
  /** Media sources may be `file:///` URLs of local files (the CLI's own renders only). */
  localFiles?: boolean;
}

export function resolveMovie(template: LoadedTemplate, params: Params, options: ResolveOptions = {}): ResolvedMovie {
  const { spec } = template;
  const fps = spec.canvas.fps;
  const hb = templateFunctions(createHandlebarsEnv(template.partials));
  const errors: ErrorDetail[] = [];
  const at = (p: Array<string | number>) => `${template.file}:${template.lineOf(p)}`;
  const toFrames = (seconds: number) => Math.round(seconds * fps);

  // Constants last: no param can stand in for one (validateParams refuses their names anyway).
  const root: Record<string, unknown> = { ...params, ...spec.constants };
  const reads = new ParamReads(params, spec.constants);
  const sceneUse: string[][] = [];
  const layerUse: Record<string, string[]> = {};

  type Expanded = { sourceIndex: number; context: Record<string, unknown>; data: Record<string, unknown>; madeBy: string[] };
  const expanded: Expanded[] = [];
  spec.scenes.forEach((scene, sourceIndex) => {
    if (!scene.each) {
      expanded.push({ sourceIndex, context: reads.context(), data: {}, madeBy: [] });
      return;
    }
    reads.take();
    const list = typeof scene.each === 'string' ? params[scene.each] : eachRange(scene.each.range, hb, reads.context(), (message) => errors.push({ field: at(['scenes', sourceIndex, 'each', 'range']), message }));
    const madeBy = typeof scene.each === 'string' ? [scene.each] : reads.take();
    if (list === undefined) return;
    if (!Array.isArray(list)) {
      errors.push({ field: at(['scenes', sourceIndex, 'each']), message: `"each: ${scene.each}" needs a list variable` });
      return;
    }
    list.forEach((item: ParamValue, index) =>
      expanded.push({
        sourceIndex,
        context: reads.context({ item }),
        data: { index, first: index === 0, last: index === list.length - 1, count: list.length },
        madeBy,
      }),
    );
  });

  const scenes: ResolvedScene[] = [];
  let previousEnd = 0;
  const declaredTotal = spec.duration !== undefined ? toFrames(spec.duration) : undefined;
  expanded.forEach(({ sourceIndex, context, data, madeBy }, index) => {
    const sourcePath = ['scenes', sourceIndex];
    // What each string leaf read: a layer's own leaves are its use, the rest the scene's.
    const ownUse = new Set(madeBy);
    const leafUse = new Map<number, Set<string>>();
    reads.take();
    const rendered = applyHandlebars(
      spec.scenes[sourceIndex],
      hb,
      context,
      data,
      (p, message) => errors.push({ field: at([...sourcePath, ...p]), message }),
      [],
      (p) => {
        const names = reads.take();
        const into = p[0] === 'layers' && typeof p[1] === 'number' ? (leafUse.get(p[1]) ?? leafUse.set(p[1], new Set()).get(p[1])!) : ownUse;
        for (const n of names) into.add(n);
      },
    );
    const checked = resolvedSceneSchema.safeParse(rendered);
    if (!checked.success) {
      for (const raw of checked.error.issues) {
        const issue = explainIssue(raw);
        const p = [...sourcePath, ...issue.path];
        errors.push({ field: at(p), message: `${p.join('.')}: ${issue.message} (after applying params)` });
      }
      return;
    }
    const scene = checked.data;
    const isLast = index === expanded.length - 1;
    const transitionFrames = index > 0 && scene.transition ? toFrames(scene.transition.duration) : 0;
    const startFrame = Math.max(0, previousEnd - transitionFrames);
    let endFrame: number;
    if (scene.duration !== undefined) endFrame = startFrame + toFrames(scene.duration);
    else if (isLast && declaredTotal !== undefined) endFrame = declaredTotal;
    else {
      errors.push({ field: at([...sourcePath, 'duration']), message: `scene ${index + 1} needs a duration (only the last scene may take the movie's)` });
      return;
    }
    if (endFrame <= startFrame) {
      errors.push({ field: at([...sourcePath, 'duration']), message: `scene ${index + 1} lasts less than one frame` });
      return;
    }
    const previousLength = previousEnd - (scenes[scenes.length - 1]?.startFrame ?? 0);
    if (transitionFrames > Math.min(previousLength, endFrame - startFrame)) {
      errors.push({ field: at([...sourcePath, 'transition', 'duration']), message: 'a transition cannot be longer than either scene it joins' });
    }
    const layers: TimedLayer[] = [];
    scene.layers.forEach((layer, li) => {
      const layerPath = [...sourcePath, 'layers', li];
      const s = layer.start !== undefined ? startFrame + toFrames(layer.start) : startFrame;
      const e = layer.end !== undefined ? Math.min(endFrame, startFrame + toFrames(layer.end)) : endFrame;
      if (e <= s) {
        errors.push({ field: at(layerPath), message: `layer ${li + 1} of scene ${index + 1} is never visible (end ≤ start)` });
        return;
      }
      const timed: TimedLayer = { id: `s${index}.l${li}`, startFrame: s, endFrame: e, spec: layer };
      const use = new Set([...ownUse, ...(leafUse.get(li) ?? [])]);
      if (layer.type === 'image' || layer.type === 'video') {
        const ref = mediaRef(template, layer.src, options.localFiles);
        if (typeof ref === 'string') errors.push({ field: at([...layerPath, 'src']), message: ref });
        else timed.media = ref;
      }
      if (layer.type === 'svg') {
        const rel = templateFile(template, layer.src);
        if (rel.startsWith('!')) errors.push({ field: at([...layerPath, 'src']), message: rel.slice(1) });
        else if (!template.svgSources[rel]) errors.push({ field: at([...layerPath, 'src']), message: `${rel} is not an .svg.hbs file of this template` });
        else {
          try {
            reads.take();
            timed.svg = hb.markup(template.svgSources[rel])(context, data);
            for (const n of reads.take()) use.add(n);
            // librsvg would only say "could not be read": name the file and the line instead.
            const broken = xmlProblem(timed.svg);
            if (broken) errors.push({ field: `${template.project}/${template.movie}/${rel}:${broken.line}`, message: `not well-formed XML (after applying params): ${broken.message}` });
          } catch (err) {
            errors.push({ field: `${template.project}/${template.movie}/${rel}:1`, message: `Handlebars: ${(err as Error).message.split('\n')[0]}` });
          }
        }
      }
      if (layer.type === 'text' && layer.stack && !scene.layers.slice(0, li).some((l) => l.type === 'text')) {
        errors.push({ field: at([...layerPath, 'stack']), message: 'stack places a text layer below the previous text layer of the scene, and there is none' });
      }
      if (layer.type === 'text' && layer.split) {
        const count = textUnits(layer.text, splitOptions(layer.split).by).length;
        if (count > MAX_TEXT_UNITS) errors.push({ field: at([...layerPath, 'split']), message: `the text splits into ${count} units; at most ${MAX_TEXT_UNITS} can be animated one by one` });
        // Each unit is its own layer: a mask, a turn or a keyframed scale would apply to every word
        // (or letter) around its own centre, not to the text. Refused rather than drawn wrong.
        const whole = [layer.mask && 'mask', layer.rotation && 'rotation', layer.keyframes?.rotation && 'rotation keyframes', layer.keyframes?.scale && 'scale keyframes'].filter(Boolean);
        if (whole.length) errors.push({ field: at([...layerPath, 'split']), message: `a split text cannot take ${whole.join(', ')}: they would apply to each unit on its own` });
      }
      if (layer.type === 'lottie') {
        const field = at([...layerPath, 'src']);
        const rel = /^[a-z][a-z0-9+.-]*:/i.test(layer.src) ? '!a Lottie animation is a .json file of the template (URLs are not fetched for Lottie layers yet)' : templateFile(template, layer.src);
        if (rel.startsWith('!')) errors.push({ field, message: rel.slice(1) });
        else timed.lottie = { file: path.join(template.dir, rel), rel, templateFiles: template.files, field };
      }
      if ('keyframes' in layer && layer.keyframes) {
        for (const [name, track] of Object.entries(layer.keyframes)) {
          const bad = unorderedKeyframe(track);
          if (bad >= 0) errors.push({ field: at([...layerPath, 'keyframes', name, bad]), message: `keyframes of ${name} must be in time order (at ${track[bad].at} s comes after ${track[bad - 1].at} s)` });
        }
        const scale = layer.keyframes.scale;
        if (scale) {
          // A scaled frame is allocated whole, even where it falls off the canvas: bounded like a raster side.
          const largest = Math.max(...scale.map((k) => k.value));
          const boxSide = Math.max(('width' in layer && layer.width) || spec.canvas.width, ('height' in layer && layer.height) || spec.canvas.height);
          if (largest * boxSide > MAX_SCALED_SIDE) {
            errors.push({ field: at([...layerPath, 'keyframes', 'scale']), message: `a scale of ${largest} makes the layer about ${Math.round(largest * boxSide)} px across; at most ${MAX_SCALED_SIDE}` });
          }
        }
      }
      if (layer.type === 'shape') {
        // The drawing's own rules (a line's end and stroke, an area, a fill or a stroke), named at the layer's line.
        const drawing = shapeSvg(layer, { width: spec.canvas.width, height: spec.canvas.height });
        if (typeof drawing === 'string') errors.push({ field: at(layerPath), message: drawing });
      }
      if ('mask' in layer && layer.mask) {
        if (Boolean(layer.mask.shape) === Boolean(layer.mask.src)) {
          errors.push({ field: at([...layerPath, 'mask']), message: 'a mask is either a shape (rectangle, ellipse) or an image (src), not both or neither' });
        } else if (layer.mask.src) {
          const ref = mediaRef(template, layer.mask.src, options.localFiles);
          if (typeof ref === 'string') errors.push({ field: at([...layerPath, 'mask', 'src']), message: ref });
          else timed.maskMedia = ref;
        }
      }
      if (layer.type === 'text' && !layer.font.file && template.installedFamilies && !template.installedFamilies.has(layer.font.family.toLowerCase())) {
        // Pango would quietly set the text in another font.
        errors.push({ field: at([...layerPath, 'font', 'family']), message: `font family "${layer.font.family.slice(0, 80)}" is not installed (after applying params)` });
      }
      if (layer.type === 'captions') {
        const variable = spec.variables[layer.source];
        use.add(layer.source);
        if (!variable || (variable.type !== 'string' && variable.type !== 'list')) {
          errors.push({ field: at([...layerPath, 'source']), message: `"${layer.source}" is not a string or list variable of this movie` });
        } else if (params[layer.source] !== undefined) {
          try {
            const cues = captionCues(params[layer.source], { maxChars: layer.maxChars, lines: layer.lines, pause: layer.pause });
            timed.captions = placeCues(cues, s / fps, s / fps, e / fps);
          } catch (err) {
            if (!(err instanceof SubtitleError)) throw err;
            const where = Array.isArray(params[layer.source]) ? 'item' : 'line';
            errors.push({ field: at([...layerPath, 'source']), message: `captions in "${layer.source}", ${where} ${err.line}: ${err.message}` });
          }
        } else timed.captions = [];
      }
      if ((layer.type === 'text' || layer.type === 'captions') && layer.font.file) {
        const rel = templateFile(template, layer.font.file);
        const given = (spec.scenes[sourceIndex].layers[li] as { font?: { family?: string } }).font?.family;
        const font = rel.startsWith('!') ? rel.slice(1) : fontOfFile(template, rel, given === undefined ? undefined : layer.font.family);
        if (typeof font === 'string') errors.push({ field: at([...layerPath, 'font', 'file']), message: font });
        else {
          timed.fontFile = path.join(template.dir, rel);
          // Pango picks by family: the file's own, so the text is never set in another font.
          timed.spec = { ...layer, font: { ...layer.font, family: font.family } };
        }
      }
      layers.push(timed);
      if (use.size) layerUse[timed.id] = [...use].sort();
    });
    sceneUse.push([...ownUse].sort());
    scenes.push({
      index,
      name: scene.name ?? `scene ${index + 1}`,
      startFrame,
      endFrame,
      background: scene.background ?? spec.canvas.background,
      transition:
        transitionFrames > 0 && scene.transition
          ? { type: scene.transition.type, frames: transitionFrames, easing: scene.transition.easing, direction: scene.transition.direction }
          : undefined,
      layers,
    });
    previousEnd = endFrame;
  });

  const blender = spec.engine === 'blender' && spec.blender ? resolveBlenderScene(template, spec.blender, hb, root as Params, errors) : undefined;
  if (expanded.length === 0 && !blender && errors.length === 0) errors.push({ field: at(['scenes']), message: 'the movie has no scenes after applying params' });
  const totalFrames = declaredTotal ?? previousEnd;
  if (declaredTotal !== undefined && previousEnd > declaredTotal && errors.length === 0) {
    errors.push({
      field: at(['duration']),
      message: `scenes last ${(previousEnd / fps).toFixed(2)} s but the movie's duration is ${spec.duration} s`,
    });
  }

  const audio: ResolvedAudio[] = [];
  spec.audio.forEach((track, i) => {
    const rendered = applyHandlebars(track, hb, { ...root }, {}, (p, message) => errors.push({ field: at(['audio', i, ...p]), message }));
    const checked = resolvedAudioSchema.safeParse(rendered);
    if (!checked.success) {
      for (const raw of checked.error.issues) {
        const issue = explainIssue(raw);
        errors.push({ field: at(['audio', i, ...issue.path]), message: `audio.${i}.${issue.path.join('.')}: ${issue.message}` });
      }
      return;
    }
    const volume = checked.data.keyframes?.volume;
    const bad = volume ? unorderedKeyframe(volume) : -1;
    if (volume && bad >= 0) {
      errors.push({ field: at(['audio', i, 'keyframes', 'volume', bad]), message: `keyframes of volume must be in time order (at ${volume[bad].at} s comes after ${volume[bad - 1].at} s)` });
    }
    const under = checked.data.duck?.under;
    if (under !== undefined && (under >= spec.audio.length || under === i)) {
      const message = under === i ? 'a track cannot duck under itself' : `there is no audio track ${under} (tracks are numbered from 0; this movie has ${spec.audio.length})`;
      errors.push({ field: at(['audio', i, 'duck', 'under']), message });
    }
    const ref = mediaRef(template, checked.data.src, options.localFiles);
    if (typeof ref === 'string') errors.push({ field: at(['audio', i, 'src']), message: ref });
    else audio.push({ id: `a${i}`, media: ref, startFrame: toFrames(checked.data.start), spec: checked.data });
  });

  if (errors.length) throw badInput(`${template.project}/${template.movie}: ${errors[0].field}: ${errors[0].message}`, errors);
  // Left out, the poster is the frame nearest the middle where nothing is still animating in or out.
  const poster = spec.poster !== undefined ? toFrames(spec.poster) : defaultPosterFrame(scenes, totalFrames, fps);
  return {
    templateId: `${template.project}/${template.movie}`,
    version: template.version,
    width: spec.canvas.width,
    height: spec.canvas.height,
    fps,
    totalFrames,
    background: spec.canvas.background,
    posterFrame: Math.min(Math.max(0, poster), totalFrames - 1),
    scenes,
    audio,
    engine: spec.engine,
    ...(blender ? { blender } : {}),
    paramUse: { scenes: sceneUse, layers: layerUse },
  };
}

/**
 * Which params Handlebars reads: each param is a getter on the context it is given, so a
 * read through any helper, `lookup`, `@root` or partial is seen. Constants are plain values
 * (they are the template's, covered by its version).
 */
class ParamReads {
  private names = new Set<string>();

  constructor(
    private readonly params: Params,
    private readonly constants: Record<string, unknown> = {},
  ) {}

  /** A fresh context: params as recording getters, then constants, then `extra` (an each scene's item). */
  context(extra: Record<string, unknown> = {}): Record<string, unknown> {
    const context: Record<string, unknown> = {};
    for (const name of Object.keys(this.params)) {
      Object.defineProperty(context, name, {
        enumerable: true,
        configurable: true,
        get: () => {
          this.names.add(name);
          return this.params[name];
        },
      });
    }
    for (const [name, value] of Object.entries({ ...this.constants, ...extra })) Object.defineProperty(context, name, { value, enumerable: true, configurable: true, writable: true });
    return context;
  }

  /** The names read since the last take, sorted. */
  take(): string[] {
    const names = [...this.names].sort();
    this.names.clear();
    return names;
  }
}

/** The largest side a keyframed scale may give a layer (ffmpeg refuses pictures past 16384 px). */
const MAX_SCALED_SIDE = 16384;

/** Handlebars on every string leaf; keys and structure are never templated. */
export function applyHandlebars(
  value: unknown,
  hb: TemplateFunctions,
  context: unknown,
  data: Record<string, unknown>,
  onError: (path: Array<string | number>, message: string) => void,
  at: Array<string | number> = [],
  /** Called after each templated leaf is applied (what it read is the caller's to collect). */
  onApplied?: (path: Array<string | number>) => void,
): unknown {
  if (typeof value === 'string') {
    if (!value.includes('{{')) return value;
    try {
      return hb.text(value)(context, data);
    } catch (err) {
      onError(at, `Handlebars: ${(err as Error).message.split('\n')[0]}`);
      return value;
    } finally {
      onApplied?.(at);
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => applyHandlebars(v, hb, context, data, onError, [...at, i], onApplied));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, applyHandlebars(v, hb, context, data, onError, [...at, k], onApplied)]),
    );
  }
  return value;
}

/** A media src after Handlebars: an http(s) URL, or a file inside the template folder. */
export function mediaRef(template: LoadedTemplate, src: string, localFiles = false): MediaRef | string {
  if (/^https?:\/\//i.test(src)) return { kind: 'url', url: src };
  if (localFiles && LOCAL_FILE_URL.test(src)) return { kind: 'file', path: fileURLToPath(src) };
  if (/^[a-z][a-z0-9+.-]*:/i.test(src)) return `unsupported media source "${src.slice(0, 80)}": use an http(s) URL or a file of the template`;
  if (src.trim() === '') return 'media source is empty (is a media variable missing?)';
  const rel = templateFile(template, src);
  return rel.startsWith('!') ? rel.slice(1) : { kind: 'file', path: path.join(template.dir, rel) };
}

/** The most scenes one `each: { range }` may make. */
export const MAX_EACH_RANGE = 1000;

/** `each: { range: [from, to, step?] }` → the numbers, inclusive, up or down; undefined after an error. */
function eachRange(bounds: Array<string | number>, hb: TemplateFunctions, context: unknown, onError: (message: string) => void): number[] | undefined {
  const texts = bounds.map((b) => {
    try {
      return typeof b === 'string' ? hb.text(b)(context).trim() : String(b);
    } catch {
      return ''; // a Handlebars error: reported as not a number, at the line
    }
  });
  const numbers = texts.map((t) => (t === '' ? NaN : Number(t)));
  const bad = numbers.findIndex((n, i) => !Number.isFinite(n) || (i === 2 && n === 0));
  if (bad >= 0) {
    onError(`each: range ${['from', 'to', 'step'][bad]} "${String(bounds[bad]).slice(0, 40)}" is not ${bad === 2 ? 'a non-zero' : 'a'} number (after applying params)`);
    return undefined;
  }
  const [from, to, step = 1] = numbers;
  const count = Math.floor(Math.abs(to - from) / Math.abs(step) + 1e-9) + 1;
  if (count > MAX_EACH_RANGE) {
    onError(`each: range [${from}, ${to}] makes ${count} scenes; at most ${MAX_EACH_RANGE}`);
    return undefined;
  }
  const sign = to >= from ? 1 : -1;
  return Array.from({ length: count }, (_, i) => Number((from + sign * i * Math.abs(step)).toPrecision(12)));
}

/** The family to ask Pango for: the font file's own (the one given must be among its names). */
function fontOfFile(template: LoadedTemplate, rel: string, family: string | undefined): { family: string } | string {
  if (!FONT_FILE.test(rel)) return `font file "${rel.slice(0, 80)}" is not a .ttf, .otf or .ttc font`;
  const names = template.fonts?.[rel];
  if (!names) return `font file "${rel.slice(0, 80)}" was not read with the template`;
  if ('problem' in names) return `font file "${rel.slice(0, 80)}" ${names.problem}`;
  if (family === undefined) return { family: names.families[0] };
  const match = names.families.find((f) => f.toLowerCase() === family.toLowerCase());
  return match ? { family: match } : `font file "${rel.slice(0, 80)}" is the family "${names.families.join('", "')}", not "${family.slice(0, 80)}"`;
}

/** Normalises a template-relative path; a leading `!` marks an error message. Never leaves the folder. */
function templateFile(template: LoadedTemplate, src: string): string {
  const rel = path.posix.normalize(src.replace(/\\/g, '/'));
  if (path.posix.isAbsolute(rel) || rel === '..' || rel.startsWith('../') || rel.includes('\0')) {
    return `!"${src.slice(0, 80)}" points outside the template folder`;
  }
  if (!template.files.includes(rel)) return `!file "${rel.slice(0, 80)}" not found in ${template.project}/${template.movie}`;
  return rel;
}
