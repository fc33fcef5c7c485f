import { z } from 'zod';

/**
 * The `blender:` block of a movie whose `engine` is `blender`: the scene (a .blend of the
 * template, or a Python file of the template that builds it), render settings, and bindings
 * that map variables onto the scene. Bindings are data, never code: they name objects,
 * materials and images of the scene and give values, and one script of ours applies them.
 *
 * Like the timeline, the block is checked twice: at load time (a scalar may still be a
 * templated string) and after Handlebars (every value final).
 */
const TEMPLATED = /\{\{/;
const HEX = /^#([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$/;

export const BLENDER_RENDER_ENGINES = ['CYCLES', 'BLENDER_EEVEE'] as const;
export const BLENDER_DEVICES = ['CPU', 'CUDA', 'OPTIX', 'HIP'] as const;
export type BlenderDevice = (typeof BLENDER_DEVICES)[number];

/** Names of datablocks: what Blender allows (63 bytes), no control characters. */
const NAME = z
  .string()
  .min(1, 'expected a name')
  .max(63, 'Blender names are at most 63 characters')
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'control characters are not allowed in names');

function blenderSchemas<S extends z.ZodTypeAny>(stillTemplated: S) {
  const tpl = <T extends z.ZodTypeAny>(schema: T) => z.union([schema, stillTemplated]);
  const numberLike = z.preprocess(
    (v) => (typeof v === 'string' && v.trim() !== '' && !TEMPLATED.test(v) && Number.isFinite(Number(v)) ? Number(v) : v),
    z.number({ invalid_type_error: 'expected a number' }).finite(),
  );
  const boolLike = z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean({ invalid_type_error: 'expected true or false' }));
  const name = tpl(NAME);
  const num = tpl(numberLike);
  // Scene units and degrees: bounded, so a param cannot throw an object (or the scene's maths) to 1e308.
  const coord = tpl(numberLike.pipe(z.number().min(-1e6, 'must be ≥ -1000000').max(1e6, 'must be ≤ 1000000')));
  const vec3 = z.array(coord).length(3, 'expected [x, y, z]');
  const color = tpl(z.string().regex(HEX, 'expected a colour like #rrggbb or #rrggbbaa'));

  const text = z
    .object({
      type: z.literal('text'),
      /** A text object of the scene. */
      object: name,
      /** Its body: Handlebars with the params. */
      body: z.string().max(10_000),
    })
    .strict();
  const material = z
    .object({
      type: z.literal('material'),
      material: name,
      /** A node of the material's node tree; default its Principled BSDF. */
      node: name.optional(),
      /** An input socket of that node, by name (Base Color, Roughness, Emission Strength…). */
      input: name,
      /** A colour (#rrggbb[aa], sRGB) or a number. */
      value: z.union([color, num]),
    })
    .strict();
  const image = z
    .object({
      type: z.literal('image'),
      /** An image datablock of the scene (what an Image Texture node shows). */
      image: name,
      /** An image param (a URL, fetched through the asset cache and its URL policy) or a file of the template. */
      src: z.string().min(1, 'media source is empty (is a media variable missing?)'),
    })
    .strict();
  const object = z
    .object({
      type: z.literal('object'),
      object: name,
      visible: tpl(boolLike).optional(),
      location: vec3.optional(),
      /** Degrees, XYZ Euler. */
      rotation: vec3.optional(),
      scale: z.union([vec3, coord]).optional(),
    })
    .strict();
  const property = z
    .object({
      type: z.literal('property'),
      /** The custom property's name. */
      name: name,
      /** The object that holds it; default the scene. */
      object: name.optional(),
      value: z.union([num, tpl(boolLike), z.string().max(10_000)]),
    })
    .strict();
  const binding = z.discriminatedUnion('type', [text, material, image, object, property]);

  const block = z
    .object({
      /** A file of the template: `scene.blend`, or `scene.py`, which builds the scene in an empty Blender. */
      scene: z.string().regex(/^[^/\\]+\.(blend|py)$/, 'expected a .blend or .py file at the top of the template folder'),
      engine: tpl(z.enum(BLENDER_RENDER_ENGINES)).default('CYCLES' as never),
      /** Cycles samples (EEVEE: TAA render samples). */
      samples: tpl(numberLike.pipe(z.number().int().min(1).max(4096))).default(16 as never),
      device: tpl(z.enum(BLENDER_DEVICES)).default('CPU' as never),
      denoise: tpl(boolLike).default(false as never),
      /** Film transparency: the canvas background shows through where nothing is. */
      transparent: tpl(boolLike).default(false as never),
      /** The scene frame shown as the movie's first frame. */
      frameStart: tpl(numberLike.pipe(z.number().int().min(0).max(1_000_000))).default(1 as never),
      /** The camera object to render from; default the scene's. */
      camera: name.optional(),
      /** The view layer to render; default the scene's first. */
      viewLayer: name.optional(),
      /** Seconds one frame may take before the render is stopped; default BLENDER_FRAME_TIMEOUT_MS. */
      frameTimeout: numberLike.pipe(z.number().positive().max(3600)).optional(),
      bindings: z.array(binding).max(200).default([]),
    })
    .strict();
  return { block, binding };
}

const templateSchemas = blenderSchemas(z.custom<string>((v) => typeof v === 'string' && TEMPLATED.test(v), { fatal: true }));
const resolvedSchemas = blenderSchemas(z.never());
export const blenderBlockSchema = templateSchemas.block;
export const resolvedBlenderBlockSchema = resolvedSchemas.block;
export type BlenderBlock = z.infer<typeof blenderBlockSchema>;
export type ResolvedBlenderBlock = z.infer<typeof resolvedBlenderBlockSchema>;
export type ResolvedBinding = z.infer<typeof resolvedSchemas.binding>;
