import { z } from 'zod';
import { blenderBlockSchema } from '../engines/blender/blender.schema';
import { parseEasing } from '../compiler/easing';

/**
 * The movie file format (v1). Designers write it by hand in YAML or JSON.
 *
 * Any string may hold Handlebars (`{{name}}`); Handlebars is applied to string leaves after
 * parsing, so a scalar field may be a templated string at load time and is checked again,
 * strictly, once the params are in. `tpl(schema)` expresses exactly that.
 */
const TEMPLATED = /\{\{/;
// Fatal, so that a value which is neither fails as the real type would ("expected a number").
const templated = z.custom<string>((v) => typeof v === 'string' && TEMPLATED.test(v), { fatal: true });

/** Numbers may arrive as strings after Handlebars ("12.5"). */
const numberLike = z.preprocess(
  (v) => (typeof v === 'string' && v.trim() !== '' && !TEMPLATED.test(v) && Number.isFinite(Number(v)) ? Number(v) : v),
  // YAML's .inf is a number to zod: refused here, not as a non-finite number deep in the compiler.
  z.number({ invalid_type_error: 'expected a number' }).finite('must be a finite number'),
);
/** The family of a text layer without a family or a font file. */
export const DEFAULT_FONT_FAMILY = 'DejaVu Sans';
export const HEX_COLOR = /^#([0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/;
export const DIRECTIONS = ['left', 'right', 'up', 'down'] as const;
/** An easing curve's name (see compiler/easing.ts: quadratic, CSS, cubic-bezier(…), spring(…)). */
export type Easing = string;
/** Blend modes of a layer over what is below it (W3C compositing's separable modes). */
export const BLEND_MODES = ['normal', 'multiply', 'screen', 'overlay', 'darken', 'lighten', 'difference', 'exclusion', 'hardlight', 'softlight', 'addition'] as const;
export type Direction = (typeof DIRECTIONS)[number];

const boolLike = z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean());

/**
 * Layers, scenes and audio are checked twice: at load time, where a scalar may still be a
 * templated string, and after Handlebars, where every value must be final.
 */
// `as never` on defaults: TypeScript cannot see through the generic member of the union.
function timelineSchemas<S extends z.ZodTypeAny, F extends z.ZodTypeAny>(stillTemplated: S, fontFamily: F) {
  const tpl = <T extends z.ZodTypeAny>(schema: T) => z.union([schema, stillTemplated]);

  const color = tpl(z.string().regex(HEX_COLOR, 'expected a colour like #rrggbb or #rrggbbaa'));
  const seconds = tpl(numberLike.pipe(z.number().min(0, 'must be ≥ 0')));
  const positive = tpl(numberLike.pipe(z.number().positive('must be > 0')));
  /** A place on the canvas: far off it is allowed, absurd distances are not (they reach the graph as numbers). */
  const pixels = tpl(numberLike.pipe(z.number().min(-100000, 'must be ≥ -100000').max(100000, 'must be ≤ 100000')));
  /** A box's side: a hostile size would make rasters of gigabytes. */
  const side = tpl(numberLike.pipe(z.number().positive('must be > 0').max(8192, 'must be ≤ 8192 pixels')));
  // Bounded: a background's padding grows its raster on every side.
  const boxPixels = tpl(numberLike.pipe(z.number().min(0, 'must be ≥ 0').max(500, 'must be ≤ 500')));
  const fontPixels = tpl(numberLike.pipe(z.number().positive('must be > 0').max(2000, 'must be ≤ 2000')));
  const unit = tpl(numberLike.pipe(z.number().min(0).max(1, 'must be between 0 and 1')));

  const easing = tpl(
    z.string().superRefine((v, ctx) => {
      const parsed = parseEasing(v);
      if (typeof parsed === 'string') ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed });
    }),
  );
  const direction = tpl(z.enum(DIRECTIONS));

  const animation = z
    .object({
      type: z.enum(['fade', 'slide', 'scale']),
      duration: positive.default(0.5 as never),
      /** Default: linear for fades, easeOut for slides and scales. */
      easing: easing.optional(),
      /** slide: the way the layer travels (in: towards its place; out: away from it). */
      direction: direction.default('left' as never),
      /** slide: how far, in pixels. */
      distance: positive.default(200 as never),
    })
    .strict();
  const animations = z.union([animation, z.array(animation).max(3)]);

  /** A sound's gain: 1 as recorded, 0 silent, up to 4 (+12 dB). */
  const gain = tpl(numberLike.pipe(z.number().min(0, 'must be ≥ 0').max(4, 'must be ≤ 4')));
  const bounded = (lo: number, hi: number) => tpl(numberLike.pipe(z.number().min(lo, `must be ≥ ${lo}`).max(hi, `must be ≤ ${hi}`)));
  const keyframeTrack = <V extends z.ZodTypeAny>(value: V) =>
    z.array(z.object({ at: seconds, value, easing: easing.optional() }).strict()).min(1, 'a keyframe track needs at least one keyframe').max(100);
  /** Values over time, seconds from the layer's start; each keyframe's easing is the curve arriving at it. */
  const keyframes = z
    .object({
      opacity: keyframeTrack(unit),
      x: keyframeTrack(bounded(-100000, 100000)),
      y: keyframeTrack(bounded(-100000, 100000)),
      /** 1 = the layer's size, around its centre. */
      scale: keyframeTrack(bounded(0, 20)),
      /** Degrees clockwise, around the layer's centre. */
      rotation: keyframeTrack(bounded(-36000, 36000)),
      /** Gaussian blur radius in pixels. */
      blur: keyframeTrack(bounded(0, 200)),
    })
    .partial()
    .strict();
  /** Looks any visual layer may take: applied in this order: mask, filters, blur, shadow, rotation. */
  const look = {
    keyframes: keyframes.optional(),
    /** Degrees clockwise around the layer's centre. */
    rotation: bounded(-36000, 36000).optional(),
    /** Gaussian blur radius in pixels. */
    blur: bounded(0, 200).optional(),
    filters: z
      .object({
        grayscale: tpl(boolLike).optional(),
        /** −1 … 1, 0 = unchanged. */
        brightness: bounded(-1, 1).optional(),
        /** 0 … 4, 1 = unchanged. */
        contrast: bounded(0, 4).optional(),
        /** 0 … 3, 1 = unchanged, 0 = grey. */
        saturation: bounded(0, 3).optional(),
        /** A colour laid over the layer's own, keeping its light and shade. */
        tint: color.optional(),
      })
      .strict()
      .optional(),
    /** Only the part of the layer inside the mask shows: a shape in the layer's own coordinates, or an image's alpha. */
    mask: z
      .object({
        shape: tpl(z.enum(['rectangle', 'ellipse'])).optional(),
        src: z.string().min(1).optional(),
        /** Left out: the mask covers the whole layer (with its outline, shadow or background margins). */
        x: pixels.optional(),
        y: pixels.optional(),
        width: side.optional(),
        height: side.optional(),
        radius: seconds.default(0 as never),
        /** Soft edge, in pixels. */
        feather: bounded(0, 200).default(0 as never),
        invert: tpl(boolLike).default(false as never),
      })
      .strict()
      .optional(),
    blendMode: tpl(z.enum(BLEND_MODES)).default('normal' as never),
  };
  const dropShadow = z
    .object({ x: bounded(-1000, 1000).default(6 as never), y: bounded(-1000, 1000).default(6 as never), blur: bounded(0, 200).default(8 as never), color: color.default('#00000099' as never) })
    .strict();

  const timing = {
    /** Seconds from the start of the scene. */
    start: seconds.optional(),
    /** Seconds from the start of the scene; default: the scene's end. */
    end: seconds.optional(),
    opacity: unit.default(1 as never),
    in: animations.optional(),
    out: animations.optional(),
  };
  const box = {
    x: pixels.default(0 as never),
    y: pixels.default(0 as never),
    width: side.optional(),
    height: side.optional(),
  };
  const fit = tpl(z.enum(['cover', 'contain', 'fill'])).default('cover' as never);
  const kenBurnsPoint = z
    .object({ zoom: tpl(numberLike.pipe(z.number().min(1).max(4))).default(1 as never), x: unit.default(0.5 as never), y: unit.default(0.5 as never) })
    .strict();

  const solidLayer = z.object({ type: z.literal('solid'), color, ...box, ...timing, ...look, shadow: dropShadow.optional() }).strict();
  const gradientLayer = z
    .object({
      type: z.literal('gradient'),
      colors: z.array(color).min(2).max(8),
      /** Degrees: 0 = left to right, 90 = top to bottom. */
      angle: tpl(numberLike).default(90 as never),
      ...box,
      ...timing,
      ...look,
      shadow: dropShadow.optional(),
    })
    .strict();
  const gradientFill = z
    .object({
      colors: z.array(color).min(2).max(8),
      /** Degrees: 0 = left to right, 90 = top to bottom (linear); ignored by radial. */
      angle: tpl(numberLike).default(90 as never),
      type: tpl(z.enum(['linear', 'radial'])).default('linear' as never),
    })
    .strict();
  const shapeLayer = z
    .object({
      type: z.literal('shape'),
      shape: tpl(z.enum(['rectangle', 'ellipse', 'line'])),
      /** A colour or a gradient; none: only the stroke is drawn. */
      fill: z.union([color, gradientFill]).optional(),
      stroke: z.object({ color: color.default('#ffffff' as never), width: positive.default(4 as never) }).strict().optional(),
      /** rectangle: corner radius in pixels. */
      radius: seconds.default(0 as never),
      /** line: where it ends, canvas pixels (it starts at x, y). */
      x2: pixels.optional(),
      y2: pixels.optional(),
      ...box,
      ...timing,
      ...look,
      shadow: dropShadow.optional(),
    })
    .strict();
  const imageLayer = z
    .object({
      type: z.literal('image'),
      src: z.string().min(1, 'media source is empty (is a media variable missing?)'),
      fit,
      kenBurns: z.object({ from: kenBurnsPoint, to: kenBurnsPoint }).strict().optional(),
      ...box,
      ...timing,
      ...look,
      shadow: dropShadow.optional(),
    })
    .strict();
  const fontSpec = z
    .object({
      /** Default: the font file's own family (resolve puts it in), or DejaVu Sans without a file. */
      family: fontFamily,
      /** A .ttf/.otf/.ttc shipped in the template folder; its family is read from the file. */
      file: z.string().optional(),
      size: positive.default(48 as never),
      weight: tpl(z.enum(['normal', 'bold', 'light', 'medium', 'semibold', 'heavy'])).default('normal' as never),
      style: tpl(z.enum(['normal', 'italic'])).default('normal' as never),
    })
    .strict();
  const textLayer = z
    .object({
      type: z.literal('text'),
      text: z.string(),
      font: fontSpec.default({} as never),
      color: color.default('#ffffff' as never),
      /** Per paragraph; start and end follow its direction (Hebrew, Arabic: right to left). */
      align: tpl(z.enum(['left', 'center', 'right', 'start', 'end'])).default('left' as never),
      /** Where the text sits in `height`; it is clipped to that box. */
      verticalAlign: tpl(z.enum(['top', 'middle', 'bottom'])).default('top' as never),
      /** shrink: the largest size from `minSize` to `maxSize` (default `font.size`) at which it fits the box. */
      fit: tpl(z.enum(['none', 'shrink'])).default('none' as never),
      minSize: fontPixels.default(8 as never),
      maxSize: fontPixels.optional(),
      lineHeight: tpl(numberLike.pipe(z.number().min(0.5).max(4))).default(1.2 as never),
      background: z
        .object({
          color,
          /** Pixels around the text: one number, or [vertical, horizontal]. */
          padding: z.union([boxPixels, z.tuple([boxPixels, boxPixels])]).default(8 as never),
          radius: boxPixels.default(0 as never),
          /** One box per line (captions) instead of one around the block. */
          perLine: tpl(boolLike).default(false as never),
        })
        .strict()
        .optional(),
      /** Placed below the previous text layer of the scene, `gap` pixels under it (its `y` is not used). */
      stack: z.object({ gap: pixels.default(0 as never) }).strict().optional(),
      /** Animates each word or letter: the layer's `in`/`out` per unit, each `stagger` seconds after the one before. */
      split: z
        .union([
          tpl(z.enum(['typewriter', 'pop'])),
          z.object({ by: tpl(z.enum(['word', 'letter'])), stagger: seconds.default(0.06 as never) }).strict(),
        ])
        .optional(),
      outline: z.object({ width: bounded(0, 200), color: color.default('#000000' as never) }).strict().optional(),
      shadow: z
        .object({ x: bounded(-1000, 1000).default(3 as never), y: bounded(-1000, 1000).default(3 as never), blur: bounded(0, 200).default(4 as never), color: color.default('#000000a0' as never) })
        .strict()
        .optional(),
      ...box,
      ...timing,
      ...look,
    })
    .strict();
  const captionsLayer = z
    .object({
      type: z.literal('captions'),
      /** The variable that holds SRT/WebVTT text or a list of `{ text, start, end }` words (seconds from the layer's start). */
      source: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected the name of a variable'),
      font: fontSpec.default({} as never),
      color: color.default('#ffffff' as never),
      /** Colour of the word being spoken. */
      highlight: color.optional(),
      /** A box behind each cue's text. */
      background: z
        .object({ color: color.default('#000000b0' as never), padding: tpl(numberLike.pipe(z.number().min(0).max(200))).default(16 as never), radius: tpl(numberLike.pipe(z.number().min(0).max(200))).default(12 as never) })
        .strict()
        .optional(),
      align: tpl(z.enum(['left', 'center', 'right'])).default('center' as never),
      lineHeight: tpl(numberLike.pipe(z.number().min(0.5).max(4))).default(1.2 as never),
      maxChars: tpl(numberLike.pipe(z.number().int().min(4).max(200))).default(32 as never),
      lines: tpl(numberLike.pipe(z.number().int().min(1).max(6))).default(2 as never),
      /** Seconds of silence between words that start a new cue (word lists). */
      pause: seconds.default(0.7 as never),
      /** Distance from the canvas edges when x/y/width are left out: the captions sit bottom-centred. */
      margin: tpl(numberLike.pipe(z.number().min(0))).default(40 as never),
      /** Left out: bottom of the canvas less the margin (the captions grow upwards); given: the top of the captions. */
      x: pixels.optional(),
      y: pixels.optional(),
      width: side.optional(),
      ...timing,
    })
    .strict();
  const svgLayer = z
    .object({ type: z.literal('svg'), src: z.string().min(1, 'media source is empty (is a media variable missing?)'), ...box, ...timing, ...look, shadow: dropShadow.optional() })
    .strict();
  const videoLayer = z
    .object({
      type: z.literal('video'),
      src: z.string().min(1, 'media source is empty (is a media variable missing?)'),
      fit,
      trim: z.object({ start: seconds.default(0 as never), end: seconds.optional() }).strict().default({} as never),
      loop: tpl(boolLike).default(false as never),
      mute: tpl(boolLike).default(true as never),
      volume: gain.default(1 as never),
      ...box,
      ...timing,
      ...look,
      /** The look's keyframes, and `volume`: the clip's sound over time (replaces `volume`). */
      keyframes: keyframes.extend({ volume: keyframeTrack(gain).optional() }).optional(),
      shadow: dropShadow.optional(),
    })
    .strict();
  /** A Lottie animation (Bodymovin JSON shipped with the template), rendered to a clip with alpha once per render. */
  const lottieLayer = z
    .object({
      type: z.literal('lottie'),
      src: z.string().min(1, 'media source is empty (is a media variable missing?)'),
      /** Restart at the end; otherwise the last frame holds. */
      loop: tpl(boolLike).default(false as never),
      /** 2 plays twice as fast. */
      speed: tpl(numberLike.pipe(z.number().min(0.01, 'must be ≥ 0.01').max(100, 'must be ≤ 100'))).default(1 as never),
      ...box,
      ...timing,
      ...look,
      shadow: dropShadow.optional(),
    })
    .strict();

  const layerSchema = z.discriminatedUnion('type', [
    solidLayer,
    gradientLayer,
    shapeLayer,
    imageLayer,
    textLayer,
    svgLayer,
    videoLayer,
    lottieLayer,
    captionsLayer,
  ]);

  const transition = z
    .object({
      type: z.enum(['crossfade', 'wipe', 'slide']),
      duration: positive.default(0.5 as never),
      easing: easing.default('easeInOut' as never),
      direction: direction.default('left' as never),
    })
    .strict();

  const sceneSchema = z
    .object({
      name: z.string().optional(),
      /**
       * Repeat this scene once per item of a list variable (`each: slides`), or once per number
       * of an inclusive range (`each: { range: [10, 1] }`, optional step third); `{{item}}` and
       * `{{@index}}` inside.
       */
      // The range first: a misspelt `{ rnage: … }` is then reported as the unknown field it is.
      each: z.union([z.object({ range: z.array(tpl(numberLike)).min(2, 'range: [from, to] or [from, to, step]').max(3, 'range: [from, to] or [from, to, step]') }).strict(), z.string()]).optional(),
      /** Seconds; may be left out on the last scene, which then fills the movie's duration. */
      duration: positive.optional(),
      background: color.optional(),
      /** How this scene enters over the previous one; it overlaps the previous scene by its duration. */
      transition: transition.optional(),
      layers: z.array(layerSchema).default([] as never),
    })
    .strict();

  const audioTrack = z
    .object({
      src: z.string().min(1, 'media source is empty (is a media variable missing?)'),
      /** Seconds into the movie where the track starts. */
      start: seconds.default(0 as never),
      /** Seconds into the source where playback starts. */
      trim: seconds.default(0 as never),
      volume: gain.default(1 as never),
      fadeIn: seconds.default(0 as never),
      fadeOut: seconds.default(0 as never),
      loop: tpl(boolLike).default(false as never),
      /** `volume` over time, seconds from the track's start (replaces `volume`). */
      keyframes: z.object({ volume: keyframeTrack(gain) }).strict().optional(),
      /** Lowered to `to` × its level while the track `under` (its index in `audio`) plays. */
      duck: z
        .object({
          under: tpl(numberLike.pipe(z.number().int('must be a whole number').min(0, 'must be ≥ 0'))),
          to: unit.default(0.25 as never),
          /** Seconds the level takes to drop, ending as the other track starts. */
          attack: seconds.default(0.15 as never),
          /** Seconds the level takes to come back once the other track ends. */
          release: seconds.default(0.4 as never),
        })
        .strict()
        .optional(),
    })
    .strict();


  return { layerSchema, sceneSchema, audioTrack, animation };
}

const templateTimeline = timelineSchemas(templated, z.string().min(1).optional());
const resolvedTimeline = timelineSchemas(z.never(), z.string().min(1).default(DEFAULT_FONT_FAMILY));
export const layerSchema = templateTimeline.layerSchema;
export const sceneSchema = templateTimeline.sceneSchema;
export const resolvedLayerSchema = resolvedTimeline.layerSchema;
export const resolvedAudioSchema = resolvedTimeline.audioTrack;
export const resolvedSceneSchema = resolvedTimeline.sceneSchema;
const audioTrack = templateTimeline.audioTrack;

// ---- variables -------------------------------------------------------------------------

export const VARIABLE_TYPES = ['string', 'number', 'boolean', 'color', 'image', 'video', 'audio', 'enum', 'list'] as const;

const scalarVariable = z
  .object({
    type: z.enum(['string', 'number', 'boolean', 'color', 'image', 'video', 'audio', 'enum']),
    description: z.string().optional(),
    label: z.string().optional(),
    required: z.boolean().default(false),
    default: z.unknown().optional(),
    minLength: z.number().int().min(0).optional(),
    maxLength: z.number().int().min(1).optional(),
    pattern: z.string().optional(),
    min: z.number().optional(),
    max: z.number().optional(),
    integer: z.boolean().optional(),
    values: z.array(z.union([z.string(), z.number()])).min(1).optional(),
  })
  .strict();
export type ScalarVariable = z.infer<typeof scalarVariable>;

const listVariable = z
  .object({
    type: z.literal('list'),
    description: z.string().optional(),
    label: z.string().optional(),
    required: z.boolean().default(false),
    default: z.array(z.unknown()).optional(),
    minItems: z.number().int().min(0).optional(),
    maxItems: z.number().int().min(1).max(1000).optional(),
    /** Items are objects with these fields ... */
    fields: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), scalarVariable).optional(),
    /** ... or scalars of this type. */
    of: scalarVariable.optional(),
  })
  .strict();
export type ListVariable = z.infer<typeof listVariable>;

export const variableSchema = z.discriminatedUnion('type', [scalarVariable, listVariable]);
export type Variable = ScalarVariable | ListVariable;

/** Names the engine gives a meaning to inside templates. */
const RESERVED_NAMES = new Set(['item', 'this']);

export const movieSchema = z
  .object({
    version: z.literal(1).default(1),
    title: z.string().optional(),
    description: z.string().optional(),
    canvas: z
      .object({
        width: z.number().int().min(16).max(7680).refine((n) => n % 2 === 0, 'must be even (yuv420p)'),
        height: z.number().int().min(16).max(4320).refine((n) => n % 2 === 0, 'must be even (yuv420p)'),
        fps: z.number().int().min(1).max(120).default(30),
        background: z.string().regex(HEX_COLOR, 'expected a colour like #rrggbb').default('#000000'),
      })
      .strict(),
    /** Seconds. Default: derived from the scenes. */
    duration: z.number().positive().max(3600).optional(),
    /** Seconds into the movie of the representative still (poster). */
    poster: z.number().min(0).optional(),
    variables: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'variable names are identifiers'), variableSchema).default({}),
    /** Literal values for Handlebars (`{{brand.accent}}`) that no request can set or see. */
    constants: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'constant names are identifiers'), z.unknown()).default({}),
    audio: z.array(audioTrack).default([]),
    /** What renders the picture: the compositor (scenes of layers) or Blender (the `blender` block). */
    engine: z.enum(['ffmpeg-composite', 'blender']).default('ffmpeg-composite'),
    scenes: z.array(sceneSchema).default([]),
    blender: blenderBlockSchema.optional(),
  })
  .strict()
  .superRefine((movie, ctx) => {
    for (const name of Object.keys(movie.constants)) {
      if (Object.hasOwn(movie.variables, name)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['constants', name], message: `"${name}" is both a constant and a variable: rename one` });
      }
      if (RESERVED_NAMES.has(name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['constants', name], message: `"${name}" is reserved (each scenes' item)` });
    }
    if (movie.engine === 'blender') {
      if (!movie.blender) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['engine'], message: 'a Blender movie needs a `blender` block (scene, settings, bindings)' });
      if (movie.scenes.length > 0) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['scenes'], message: 'a Blender movie has no scenes: its picture is the Blender scene' });
      if (movie.duration === undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['engine'], message: 'a Blender movie needs a `duration` (seconds)' });
    } else {
      if (movie.scenes.length === 0) ctx.addIssue({ code: z.ZodIssueCode.too_small, minimum: 1, inclusive: true, type: 'array', path: ['scenes'], message: 'a movie needs at least one scene' });
      if (movie.blender) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['blender'], message: 'a `blender` block needs `engine: blender`' });
    }
  });

export type MovieFile = z.infer<typeof movieSchema>;

/**
 * The issue to show a designer: for a templatable field, what the real type expected; for an
 * unknown key, the key itself (so its line is found, not its parent's).
 */
export function explainIssue(issue: z.ZodIssue): { path: Array<string | number>; message: string } {
  if (issue.code === 'invalid_union' && issue.unionErrors[0]?.issues[0]) {
    const inner = issue.unionErrors[0].issues[0];
    return explainIssue({ ...inner, path: [...issue.path, ...inner.path.slice(issue.path.length)] } as z.ZodIssue);
  }
  if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) {
    return { path: [...issue.path, issue.keys[0]], message: `unknown field "${issue.keys.join('", "')}"` };
  }
  return { path: issue.path, message: issue.message };
}
export type SceneSpec = z.infer<typeof sceneSchema>;
/** After Handlebars: every value final, numbers are numbers. */
export type ResolvedLayerSpec = z.infer<typeof resolvedLayerSchema>;
export type ResolvedAudioSpec = z.infer<typeof resolvedAudioSchema>;
export type ResolvedSceneSpec = z.infer<typeof resolvedSceneSchema>;
export type AnimationSpec = z.infer<typeof resolvedTimeline.animation>;
