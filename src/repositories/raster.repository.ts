import { Injectable } from '@nestjs/common';
import sharp from 'sharp';
import { renderFailed, unusableMedia } from '../common/errors';
import { rgbaOf } from '../compiler/colors';
import { blockSide, escapePango, largestFittingSize, layoutParagraphs, placeVertically, textMarkup, type TextAlign, type VerticalAlign } from '../compiler/text-layout';

export { escapePango };

export interface Raster {
  path: string;
  width: number;
  height: number;
  /** Where the raster's top-left sits relative to the layer's box (outline and shadow grow it). */
  dx: number;
  dy: number;
  /** Every pixel opaque (a cover-fitted photo, a gradient of opaque colours): the graph may leave out its alpha. */
  opaque?: boolean;
}

export interface TextRasterSpec {
  text: string;
  family: string;
  fontFile?: string;
  size: number;
  weight: string;
  style: string;
  color: string;
  /** Per paragraph; `start`/`end` follow the paragraph's direction (its first strong letter). */
  align: TextAlign;
  lineHeight: number;
  /** Box width for word-wrap and alignment; the text's own width if absent. */
  width?: number;
  /** Box height: the text is placed in it by `verticalAlign`, and clipped to it. */
  height?: number;
  verticalAlign?: VerticalAlign;
  /** The largest size in [minSize, size] at which the text fits the box. */
  shrink?: { minSize: number };
  outline?: { width: number; color: string };
  shadow?: { x: number; y: number; blur: number; color: string };
  background?: { color: string; padding: { v: number; h: number }; radius: number; perLine: boolean };
}

/** Which part of a text to draw: all of it, one unit (a UTF-16 range), or its background alone. Parts are cropped to their ink. */
export type TextPart = { unit: [number, number] } | { background: true };

export interface TextRaster extends Raster {
  /** The font size used (after `fit: shrink`), and the box's extent for a layer stacked below: from `top` to `bottom`, relative to the layer's y. */
  text: { size: number; top: number; bottom: number };
}

export interface CaptionRasterSpec {
  /** Words per line. */
  lines: string[][];
  /** The word drawn in `color` instead of the text's colour. */
  highlight?: { line: number; word: number; color: string };
  family: string;
  fontFile?: string;
  size: number;
  weight: string;
  style: string;
  color: string;
  align: 'left' | 'center' | 'right';
  lineHeight: number;
  /** The box's width: a line wider than it (background padding included) is wrapped. */
  maxWidth: number;
  background?: { color: string; padding: number; radius: number };
}

const PANGO_WEIGHT: Record<string, string> = {
  normal: '',
  light: 'Light',
  medium: 'Medium',
  semibold: 'Semi-Bold',
  bold: 'Bold',
  heavy: 'Heavy',
};

/** Cap on what a single raster may be, so a hostile param cannot make sharp allocate gigabytes. */
const MAX_PIXELS = 8192 * 8192;
/** PNGs that only pass between steps of one raster in memory: stored, not deflated (the same pixels, a fraction of the time). */
const BETWEEN_STEPS = { compressionLevel: 0 } as const;

/**
 * Everything sharp does: text, SVG, images and gradients become PNG rasters once per render,
 * never per frame (per-frame compositing happens in ffmpeg, which is 3–30× faster here).
 */
@Injectable()
export class RasterRepository {
  /**
   * Text → PNG: Pango lays it out (wrapping, shaping, bidi), then the block is placed in its box
   * (alignment, `verticalAlign`, clipped to `height`) over its background, with shadow and
   * outline. A `part` is drawn from the same layout and cropped to its ink, with its offset.
   */
  async text(spec: TextRasterSpec, out: string, part?: TextPart): Promise<TextRaster> {
    const empty = spec.text.trim() === '';
    const size = spec.shrink && !empty && (spec.width || spec.height) ? await this.fittingSize(spec) : spec.size;
    const visible = part === undefined ? undefined : 'unit' in part ? part.unit : null;
    // An empty string renders nothing at all: keep a transparent pixel so the layer still exists.
    const block = empty ? await transparent(2, 2) : await this.pango(spec, size, textMarkup(spec.text, spec.align, visible), 'word-char');
    let img = block.data;
    let { width, height } = block.info;
    const textBox = { left: 0, top: 0, width, height };

    // Align inside the box: extend to the box width on the side the alignment leaves free.
    if (spec.width && width < spec.width) {
      const free = Math.round(spec.width) - width;
      const side = blockSide(layoutParagraphs(spec.text, spec.align));
      textBox.left = side === 'center' ? Math.floor(free / 2) : side === 'right' ? free : 0;
      img = await sharp(img).extend({ left: textBox.left, right: free - textBox.left, background: TRANSPARENT }).png(BETWEEN_STEPS).toBuffer();
      width += free;
    }
    if (spec.height) {
      const boxHeight = Math.max(1, Math.round(spec.height));
      const placed = placeVertically(height, boxHeight, spec.verticalAlign ?? 'top');
      img = placed.crop
        ? await sharp(img).extract({ left: 0, top: placed.crop.top, width, height: boxHeight }).png(BETWEEN_STEPS).toBuffer()
        : await sharp(img).extend({ top: placed.top, bottom: boxHeight - height - placed.top, background: TRANSPARENT }).png(BETWEEN_STEPS).toBuffer();
      textBox.top = placed.crop ? -placed.crop.top : placed.top;
      height = boxHeight;
    }

    const bg = empty || (part && 'unit' in part) ? undefined : spec.background;
    const outline = spec.outline?.width ?? 0;
    const sh = spec.shadow;
    const pad = Math.ceil(Math.max(outline + (sh ? sh.blur * 2 + Math.max(Math.abs(sh.x), Math.abs(sh.y)) : 0), bg ? Math.max(bg.padding.v, bg.padding.h) : 0)) + 2;
    const layers: sharp.OverlayOptions[] = [];
    const padded = await sharp(img).extend({ top: pad, bottom: pad, left: pad, right: pad, background: TRANSPARENT }).png(BETWEEN_STEPS).toBuffer();
    const W = width + pad * 2;
    const H = height + pad * 2;
    const alpha = await sharp(padded).extractChannel(3).raw().toBuffer();
    let extent = { top: 0, bottom: height };
    if (bg) {
      const { v, h } = bg.padding;
      // The visible rows of the block (it may be clipped to the box), padded.
      const top = Math.max(0, textBox.top);
      const bottom = Math.min(height, textBox.top + textBox.height);
      const boxes = bg.perLine
        ? await this.lineBoxes(spec, size, alpha, W, pad, { top: textBox.top, bottom })
        : [{ left: textBox.left, right: textBox.left + textBox.width, top, bottom }];
      const rects = boxes.map((b) => ({ x: b.left - h + pad, y: b.top - v + pad, w: b.right - b.left + 2 * h, h: b.bottom - b.top + 2 * v }));
      if (rects.length) {
        layers.push({ input: await tinted(await rectMask(rects, bg.radius, W, H), W, H, bg.color), left: 0, top: 0 });
        extent = { top: Math.min(0, ...rects.map((r) => r.y - pad)), bottom: Math.max(height, ...rects.map((r) => r.y + r.h - pad)) };
      }
    }
    if (sh) {
      const mask = sh.blur > 0 ? await sharp(alpha, { raw: { width: W, height: H, channels: 1 } }).blur(Math.max(0.3, sh.blur / 2)).extractChannel(0).raw().toBuffer() : alpha;
      layers.push({ input: await tinted(mask, W, H, sh.color), left: Math.round(sh.x), top: Math.round(sh.y) });
    }
    if (outline > 0) {
      // Dilate the glyphs' alpha: blur it, then push every touched pixel to opaque.
      const dilated = await sharp(alpha, { raw: { width: W, height: H, channels: 1 } })
        .blur(Math.max(0.3, outline / 1.5))
        .linear(12, 0)
        .extractChannel(0) // sharp would otherwise hand back sRGB: three channels where one is expected
        .raw()
        .toBuffer();
      layers.push({ input: await tinted(dilated, W, H, spec.outline!.color), left: 0, top: 0 });
    }
    layers.push({ input: padded, left: 0, top: 0 });
    const canvas = sharp({ create: { width: W, height: H, channels: 4, background: TRANSPARENT } }).composite(layers);
    const meta = { size, top: extent.top, bottom: extent.bottom };
    if (!part) {
      const info = await canvas.png({ compressionLevel: 1 }).toFile(out);
      return { path: out, width: info.width, height: info.height, dx: -pad, dy: -pad, text: meta };
    }
    // A part: only its ink, at its place in the whole layout.
    const raw = await canvas.raw().toBuffer({ resolveWithObject: true });
    const ink = inkBox(raw.data, W, H, 4, 3) ?? { left: 0, top: 0, right: 2, bottom: 2 };
    const info = await sharp(raw.data, { raw: { width: W, height: H, channels: 4 } })
      .extract({ left: ink.left, top: ink.top, width: ink.right - ink.left, height: ink.bottom - ink.top })
      .png()
      .toFile(out);
    return { path: out, width: info.width, height: info.height, dx: ink.left - pad, dy: ink.top - pad, text: meta };
  }

  /** `fit: shrink`: the largest size whose layout fits the box, words unbroken. */
  private async fittingSize(spec: TextRasterSpec): Promise<number> {
    const markup = textMarkup(spec.text, spec.align);
    const found = await largestFittingSize(spec.shrink!.minSize, spec.size, async (size) => {
      const { info } = await this.pango(spec, size, markup, 'word');
      return (!spec.width || info.width <= spec.width) && (!spec.height || info.height <= spec.height);
    });
    return found.size;
  }

  /** One Pango layout, as PNG. */
  private async pango(spec: TextRasterSpec, size: number, markup: string, wrap: 'word' | 'word-char') {
    const font = [spec.family, PANGO_WEIGHT[spec.weight] ?? '', spec.style === 'italic' ? 'Italic' : '', `${size}`].filter(Boolean).join(' ');
    let text: sharp.Sharp;
    try {
      text = sharp({
        text: {
          text: `<span foreground="${rgb(spec.color)}" fgalpha="${alphaPercent(spec.color)}%">${markup}</span>`,
          font,
          fontfile: spec.fontFile,
          rgba: true,
          dpi: 72, // 1 pt = 1 px, so `size` is in pixels
          width: spec.width ? Math.round(spec.width) : undefined,
          // Each paragraph carries the marks that put it on its side (see layoutParagraphs), except centred ones.
          align: spec.align === 'center' ? 'centre' : 'left',
          wrap,
          spacing: Math.round(size * (spec.lineHeight - 1)),
        },
        limitInputPixels: MAX_PIXELS,
      });
    } catch (err) {
      throw renderFailed('text could not be rasterised', [], { internal: (err as Error).message });
    }
    return text.png(BETWEEN_STEPS).toBuffer({ resolveWithObject: true }).catch((err: Error) => {
      throw renderFailed('text could not be rasterised (a font or a character Pango cannot use)', [], { internal: err.message });
    });
  }

  /**
   * `perLine` backgrounds: one box per line, as wide as the line's ink. sharp crops a layout to
   * its ink, so the line pitch is measured (two lines of one letter less one) and each line's
   * band is centred on where that letter's ink would be.
   */
  private async lineBoxes(spec: TextRasterSpec, size: number, alpha: Buffer, W: number, pad: number, block: { top: number; bottom: number }) {
    const letter = escapePango([...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(spec.text.trim())][0]?.segment ?? 'X');
    const unboxed = { ...spec, width: undefined };
    const one = (await this.pango(unboxed, size, letter, 'word')).info.height;
    const pitch = Math.max(1, (await this.pango(unboxed, size, `${letter}\n${letter}`, 'word')).info.height - one);
    const slack = Math.floor((pitch - one) / 2);
    const boxes: Array<{ left: number; right: number; top: number; bottom: number }> = [];
    for (let line = block.top - slack; line < block.bottom; line += pitch) {
      const rows = { top: Math.max(0, line), bottom: Math.min(block.bottom, line + pitch) };
      if (rows.bottom <= rows.top) continue;
      const band = alpha.subarray((rows.top + pad) * W, (rows.bottom + pad) * W);
      const ink = inkBox(band, W, rows.bottom - rows.top, 1, 0);
      // The box is as tall as the letter, and reaches down to the line's descenders.
      if (ink) boxes.push({ left: ink.left - pad, right: ink.right - pad, top: Math.max(0, line + slack), bottom: Math.min(block.bottom, Math.max(line + slack + one, rows.top + ink.bottom)) });
    }
    return boxes;
  }

  /**
   * One caption cue: lines of words (our own line breaks; Pango does not wrap), one word in the
   * highlight colour if asked, over a rounded box if asked. At its natural size: `place` puts it
   * on the sequence's common canvas.
   */
  async captionCue(spec: CaptionRasterSpec, out: string): Promise<Raster> {
    const markup = spec.lines
      .map((words, li) =>
        words
          .map((w, wi) => {
            const text = escapePango(w);
            const h = spec.highlight;
            return h && h.line === li && h.word === wi ? `<span foreground="${rgb(h.color)}" fgalpha="${alphaPercent(h.color)}%">${text}</span>` : text;
          })
          .join(' '),
      )
      .join('\n');
    const font = [spec.family, PANGO_WEIGHT[spec.weight] ?? '', spec.style === 'italic' ? 'Italic' : '', `${spec.size}`].filter(Boolean).join(' ');
    let rendered: { data: Buffer; info: sharp.OutputInfo };
    try {
      rendered = await sharp({
        text: {
          text: `<span foreground="${rgb(spec.color)}" fgalpha="${alphaPercent(spec.color)}%">${markup}</span>`,
          font,
          fontfile: spec.fontFile,
          rgba: true,
          dpi: 72, // 1 pt = 1 px, so `size` is in pixels
          align: spec.align === 'center' ? 'centre' : spec.align,
          spacing: Math.round(spec.size * (spec.lineHeight - 1)),
          // Lines are ours; Pango wraps only a line that is still wider than the box.
          width: Math.max(1, Math.round(spec.maxWidth - 2 * (spec.background?.padding ?? 0))),
          wrap: 'word-char',
        },
        limitInputPixels: MAX_PIXELS,
      })
        .png()
        .toBuffer({ resolveWithObject: true });
    } catch (err) {
      throw renderFailed('a caption could not be rasterised (a font or a character Pango cannot use)', [], { internal: (err as Error).message });
    }
    const { width, height } = rendered.info;
    const bg = spec.background;
    if (!bg) {
      const info = await sharp(rendered.data).png({ compressionLevel: 1 }).toFile(out);
      return { path: out, width: info.width, height: info.height, dx: 0, dy: 0 };
    }
    const pad = Math.round(bg.padding);
    const W = width + pad * 2;
    const H = height + pad * 2;
    const box =
      `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">` +
      `<rect width="${W}" height="${H}" rx="${Math.round(bg.radius)}" fill="${rgb(bg.color)}" fill-opacity="${alphaPercent(bg.color) / 100}"/></svg>`;
    const info = await sharp(Buffer.from(box))
      .composite([{ input: rendered.data, left: pad, top: pad }])
      .png({ compressionLevel: 1 })
      .toFile(out);
    return { path: out, width: info.width, height: info.height, dx: 0, dy: 0 };
  }

  /**
   * A raster on a transparent canvas of `width` × `height` (at least its own size), aligned
   * horizontally and to the top or bottom: the stills of a sequence share one size so that
   * the overlay never moves. No `src`: the canvas alone (a sequence's gaps).
   */
  async place(src: string | undefined, canvas: { width: number; height: number; align: 'left' | 'center' | 'right'; bottom: boolean }, out: string): Promise<Raster> {
    const base = sharp({ create: { width: canvas.width, height: canvas.height, channels: 4, background: TRANSPARENT } });
    if (!src) {
      const info = await base.png().toFile(out);
      return { path: out, width: info.width, height: info.height, dx: 0, dy: 0 };
    }
    const meta = await sharp(src).metadata();
    const [w, h] = [meta.width ?? 0, meta.height ?? 0];
    const free = Math.max(0, canvas.width - w);
    const left = canvas.align === 'center' ? Math.floor(free / 2) : canvas.align === 'right' ? free : 0;
    const top = canvas.bottom ? Math.max(0, canvas.height - h) : 0;
    const info = await base.composite([{ input: src, left, top }]).png({ compressionLevel: 1 }).toFile(out);
    return { path: out, width: info.width, height: info.height, dx: 0, dy: 0 };
  }

  /** SVG markup (already through Handlebars, values escaped) → PNG, fitted to the box if given. */
  async svg(markup: string, box: { width?: number; height?: number }, out: string): Promise<Raster> {
    const input = Buffer.from(markup);
    let meta: sharp.Metadata;
    try {
      meta = await sharp(input).metadata();
    } catch (err) {
      throw renderFailed('the SVG could not be read (is it well-formed XML?)', [], { internal: (err as Error).message });
    }
    const natural = { width: meta.width ?? 100, height: meta.height ?? 100 };
    const target = fitBox(natural, box);
    // Rasterise at the density that gives the target size directly: crisp edges, no resampling blur.
    const density = Math.min(2400, Math.max(1, 72 * Math.max(target.width / natural.width, target.height / natural.height)));
    const info = await sharp(input, { density, limitInputPixels: MAX_PIXELS })
      .resize(target.width, target.height, { fit: 'fill' })
      .png()
      .toFile(out)
      .catch((err: Error) => {
        throw renderFailed('the SVG could not be rasterised', [], { internal: err.message });
      });
    return { path: out, width: info.width, height: info.height, dx: 0, dy: 0 };
  }

  /** A photo or graphic fitted to a box (EXIF orientation applied). */
  async image(src: string, box: { width?: number; height?: number }, fit: 'cover' | 'contain' | 'fill', out: string): Promise<Raster> {
    let meta: sharp.Metadata;
    try {
      meta = await sharp(src, { limitInputPixels: MAX_PIXELS }).metadata();
    } catch (err) {
      throw unusableMedia('an image could not be read', [], { internal: (err as Error).message });
    }
    const rotated = (meta.orientation ?? 1) >= 5;
    const natural = { width: (rotated ? meta.height : meta.width) ?? 1, height: (rotated ? meta.width : meta.height) ?? 1 };
    const target = fitBox(natural, box);
    const info = await sharp(src, { limitInputPixels: MAX_PIXELS })
      .rotate()
      .resize(target.width, target.height, { fit, position: 'centre', background: TRANSPARENT })
      .ensureAlpha()
      .png({ compressionLevel: 1 }) // decoded once per render: favour speed over size
      .toFile(out)
      .catch((err: Error) => {
        // The header read fine and the pixels did not (a damaged file): the media's fault, not the render's.
        throw unusableMedia('an image could not be decoded (its pixel data is damaged)', [], { internal: err.message });
      });
    // Cover and fill leave no pixel of the box empty: without an alpha channel of its own, the picture is opaque.
    return { path: out, width: info.width, height: info.height, dx: 0, dy: 0, opaque: !meta.hasAlpha && fit !== 'contain' };
  }

  /**
   * Whether every pixel of an image decodes (a damaged file often has a fine header), within
   * `timeoutMs`. Undefined when it does; why not (for the log) otherwise.
   */
  async decodeProblem(src: string, timeoutMs: number): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        sharp(src, { limitInputPixels: MAX_PIXELS, failOn: 'error' }).stats(), // reads every pixel, streaming: bounded memory
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`decoding took over ${timeoutMs} ms`)), timeoutMs))),
      ]);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A linear gradient; angle 0 runs left → right, 90 top → bottom. */
  async gradient(colors: string[], angle: number, width: number, height: number, out: string): Promise<Raster> {
    const rad = (angle * Math.PI) / 180;
    const [dx, dy] = [Math.cos(rad) / 2, Math.sin(rad) / 2];
    const stops = colors
      .map((c, i) => `<stop offset="${(i / (colors.length - 1)).toFixed(4)}" stop-color="${rgb(c)}" stop-opacity="${alphaPercent(c) / 100}"/>`)
      .join('');
    const svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<defs><linearGradient id="g" x1="${0.5 - dx}" y1="${0.5 - dy}" x2="${0.5 + dx}" y2="${0.5 + dy}">${stops}</linearGradient></defs>` +
      `<rect width="100%" height="100%" fill="url(#g)"/></svg>`;
    const info = await sharp(Buffer.from(svg)).png({ compressionLevel: 1 }).toFile(out);
    return { path: out, width: info.width, height: info.height, dx: 0, dy: 0, opaque: colors.every((c) => alphaPercent(c) === 100) };
  }

  /**
   * A frame from ffmpeg (raw RGB24, or a PNG file) → a jpg or webp file. JPEG: mozjpeg's quantisation tables
   * with optimised Huffman codes, without its trellis quantisation and progressive scans: those
   * cost ten times the encode (≈150 ms for a 1080p frame) for ≈20 % fewer bytes, at no better PSNR.
   */
  async encodeStill(frame: { rgb: Buffer; width: number; height: number } | { png: string }, format: 'jpg' | 'webp', quality: number, out: string): Promise<void> {
    if ('rgb' in frame && frame.rgb.length !== frame.width * frame.height * 3) {
      throw renderFailed('the render did not produce one whole frame', [], { internal: `${frame.rgb.length} bytes for ${frame.width}×${frame.height} RGB` });
    }
    const img = 'rgb' in frame ? sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } }) : sharp(frame.png).removeAlpha();
    if (format === 'jpg') await img.jpeg({ quality, quantisationTable: 3, optimiseCoding: true }).toFile(out);
    else await img.webp({ quality }).toFile(out);
  }

  /**
   * An image's alpha as a mask (grey PNG of `size`): fitted into `box` (in the content's pixels),
   * black outside it; inverted and feathered on request.
   */
  async maskFromImage(
    src: string,
    box: { x: number; y: number; width: number; height: number; invert: boolean; feather: number },
    size: { width: number; height: number },
    out: string,
  ): Promise<Raster> {
    const w = Math.max(1, Math.round(box.width));
    const h = Math.max(1, Math.round(box.height));
    const [left, top] = [Math.round(box.x), Math.round(box.y)];
    // Only the part of the fitted image that lies on the content: a box may reach past its edges
    // (sharp refuses to composite a larger image), and nothing outside it is ever computed.
    const [x0, y0] = [Math.max(0, -left), Math.max(0, -top)];
    const [x1, y1] = [Math.min(w, size.width - left), Math.min(h, size.height - top)];
    const composite: sharp.OverlayOptions[] = [];
    if (x1 > x0 && y1 > y0) {
      let alpha: Buffer;
      try {
        alpha = await sharp(src, { limitInputPixels: MAX_PIXELS })
          .rotate()
          .resize(w, h, { fit: 'fill' })
          .extract({ left: x0, top: y0, width: x1 - x0, height: y1 - y0 })
          .ensureAlpha()
          .extractChannel(3)
          .raw()
          .toBuffer();
      } catch (err) {
        throw unusableMedia('a mask image could not be read', [], { internal: (err as Error).message });
      }
      composite.push({ input: alpha, raw: { width: x1 - x0, height: y1 - y0, channels: 1 }, left: left + x0, top: top + y0 });
    }
    const placed = await sharp({ create: { width: size.width, height: size.height, channels: 3, background: { r: 0, g: 0, b: 0 } } })
      .composite(composite)
      .extractChannel(0)
      .raw()
      .toBuffer();
    let img = sharp(placed, { raw: { width: size.width, height: size.height, channels: 1 } });
    if (box.feather > 0) img = img.blur(Math.max(0.3, box.feather / 2));
    if (box.invert) img = img.negate();
    const info = await img.toColourspace('b-w').png().toFile(out);
    return { path: out, width: info.width, height: info.height, dx: 0, dy: 0 };
  }
}

const TRANSPARENT = { r: 0, g: 0, b: 0, alpha: 0 };

const rgb = (hex: string): string => rgbaOf(hex).rgb;
const alphaPercent = (hex: string): number => Math.round(rgbaOf(hex).a * 100);

async function transparent(width: number, height: number) {
  return sharp({ create: { width, height, channels: 4, background: TRANSPARENT } }).png().toBuffer({ resolveWithObject: true });
}

/** A single-channel mask → an RGBA image of one colour with that mask (times the colour's alpha). */
async function tinted(mask: Buffer, width: number, height: number, color: string): Promise<Buffer> {
  const { r, g, b, a } = rgbaOf(color);
  const scaled = a < 1 ? await sharp(mask, { raw: { width, height, channels: 1 } }).linear(a, 0).extractChannel(0).raw().toBuffer() : mask;
  return sharp({ create: { width, height, channels: 3, background: { r, g, b } } })
    .joinChannel(scaled, { raw: { width, height, channels: 1 } })
    .png(BETWEEN_STEPS)
    .toBuffer();
}

/** The size a source takes in a box: the box itself, or the source scaled to the one side given. */
function fitBox(natural: { width: number; height: number }, box: { width?: number; height?: number }) {
  const even = (n: number) => Math.max(2, Math.round(n / 2) * 2);
  if (box.width && box.height) return { width: even(box.width), height: even(box.height) };
  if (box.width) return { width: even(box.width), height: even((box.width * natural.height) / natural.width) };
  if (box.height) return { width: even((box.height * natural.width) / natural.height), height: even(box.height) };
  return { width: even(natural.width), height: even(natural.height) };
}

/** The bounding box [left, right) × [top, bottom) of the pixels whose channel `channel` is not 0; undefined when there are none. */
function inkBox(data: Buffer, width: number, height: number, channels: number, channel: number) {
  let [left, top, right, bottom] = [width, height, 0, 0];
  for (let y = 0; y < height; y++) {
    const row = y * width * channels;
    for (let x = 0; x < width; x++) {
      if (data[row + x * channels + channel] === 0) continue;
      if (x < left) left = x;
      if (x >= right) right = x + 1;
      if (y < top) top = y;
      bottom = y + 1;
    }
  }
  return right > left ? { left, top, right, bottom } : undefined;
}

/** White rounded rectangles on transparent → their alpha as a single-channel mask. */
async function rectMask(rects: Array<{ x: number; y: number; w: number; h: number }>, radius: number, width: number, height: number): Promise<Buffer> {
  const shapes = rects.map((r) => `<rect x="${r.x}" y="${r.y}" width="${r.w}" height="${r.h}" rx="${radius}" ry="${radius}" fill="#fff"/>`).join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${shapes}</svg>`;
  return sharp(Buffer.from(svg)).ensureAlpha().extractChannel(3).raw().toBuffer();
}
