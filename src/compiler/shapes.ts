import { rgbaOf } from './colors';
import { num } from './easing';

/** A shape layer's drawing, after params: every colour a checked hex, every number final. */
export interface ShapeSpec {
  shape: 'rectangle' | 'ellipse' | 'line';
  x: number;
  y: number;
  width?: number;
  height?: number;
  x2?: number;
  y2?: number;
  radius: number;
  fill?: string | { colors: string[]; angle: number; type: 'linear' | 'radial' };
  stroke?: { color: string; width: number };
}

/** SVG markup of a shape, and where its raster's top-left sits relative to the layer's x, y. */
export interface ShapeDrawing {
  markup: string;
  width: number;
  height: number;
  dx: number;
  dy: number;
}

/** Largest side of a shape's raster: a hostile size cannot make sharp allocate gigabytes. */
const MAX_SIDE = 8192;

/**
 * A shape as SVG (rasterised once by sharp, like any SVG layer). Pure. The stroke is centred on
 * the outline, as in SVG and design tools, so the raster grows by half the stroke on each side.
 * Only checked hex colours and numbers reach the markup.
 */
export function shapeSvg(spec: ShapeSpec, canvas: { width: number; height: number }): ShapeDrawing | string {
  const sw = spec.stroke?.width ?? 0;
  if (spec.shape === 'line') {
    if (spec.x2 === undefined || spec.y2 === undefined) return 'a line needs x2 and y2 (where it ends)';
    if (!spec.stroke) return 'a line needs a stroke (its colour and width)';
    const pad = Math.ceil(sw / 2) + 1;
    const left = Math.min(spec.x, spec.x2) - pad;
    const top = Math.min(spec.y, spec.y2) - pad;
    const width = Math.ceil(Math.abs(spec.x2 - spec.x)) + 2 * pad;
    const height = Math.ceil(Math.abs(spec.y2 - spec.y)) + 2 * pad;
    if (width > MAX_SIDE || height > MAX_SIDE) return `the line is too long (at most ${MAX_SIDE} pixels each way)`;
    const line = `<line x1="${num(spec.x - left)}" y1="${num(spec.y - top)}" x2="${num(spec.x2 - left)}" y2="${num(spec.y2 - top)}" ${stroke(spec.stroke)} stroke-linecap="round"/>`;
    return { markup: svg(width, height, '', line), width, height, dx: left - spec.x, dy: top - spec.y };
  }
  const w = spec.width ?? canvas.width - spec.x;
  const h = spec.height ?? canvas.height - spec.y;
  if (w <= 0 || h <= 0) return 'the shape has no area (width and height must be > 0)';
  const pad = Math.ceil(sw / 2);
  const width = Math.ceil(w) + 2 * pad;
  const height = Math.ceil(h) + 2 * pad;
  if (width > MAX_SIDE || height > MAX_SIDE) return `the shape is too large (at most ${MAX_SIDE} pixels each way)`;
  if (!spec.fill && !spec.stroke) return 'the shape has neither fill nor stroke: it would be invisible';
  const [defs, fill] = paint(spec.fill);
  const body =
    spec.shape === 'rectangle'
      ? `<rect x="${num(pad)}" y="${num(pad)}" width="${num(w)}" height="${num(h)}" rx="${num(Math.min(spec.radius, w / 2, h / 2))}" ${fill} ${stroke(spec.stroke)}/>`
      : `<ellipse cx="${num(pad + w / 2)}" cy="${num(pad + h / 2)}" rx="${num(w / 2)}" ry="${num(h / 2)}" ${fill} ${stroke(spec.stroke)}/>`;
  return { markup: svg(width, height, defs, body), width, height, dx: -pad, dy: -pad };
}

/** A mask of a layer's content: white where it shows, black elsewhere, as SVG of the content's size. */
export interface MaskShape {
  shape: 'rectangle' | 'ellipse';
  /** In the content's pixels. */
  x: number;
  y: number;
  width: number;
  height: number;
  radius: number;
  feather: number;
  invert: boolean;
}

export function maskSvg(mask: MaskShape, size: { width: number; height: number }): string {
  const [inside, outside] = mask.invert ? ['#000000', '#ffffff'] : ['#ffffff', '#000000'];
  const blur = mask.feather > 0 ? `<filter id="f" x="-50%" y="-50%" width="200%" height="200%"><feGaussianBlur stdDeviation="${num(mask.feather / 2)}"/></filter>` : '';
  const filter = mask.feather > 0 ? ' filter="url(#f)"' : '';
  const shape =
    mask.shape === 'rectangle'
      ? `<rect x="${num(mask.x)}" y="${num(mask.y)}" width="${num(mask.width)}" height="${num(mask.height)}" rx="${num(Math.min(mask.radius, mask.width / 2, mask.height / 2))}" fill="${inside}"${filter}/>`
      : `<ellipse cx="${num(mask.x + mask.width / 2)}" cy="${num(mask.y + mask.height / 2)}" rx="${num(mask.width / 2)}" ry="${num(mask.height / 2)}" fill="${inside}"${filter}/>`;
  return svg(size.width, size.height, blur, `<rect width="100%" height="100%" fill="${outside}"/>${shape}`);
}

function svg(width: number, height: number, defs: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${defs ? `<defs>${defs}</defs>` : ''}${body}</svg>`;
}

function stroke(s: ShapeSpec['stroke']): string {
  if (!s) return 'stroke="none"';
  const [rgb, alpha] = colour(s.color);
  return `stroke="${rgb}" stroke-opacity="${alpha}" stroke-width="${num(s.width)}"`;
}

/** Fill attributes, and the gradient definition they refer to. */
function paint(fill: ShapeSpec['fill']): [string, string] {
  if (!fill) return ['', 'fill="none"'];
  if (typeof fill === 'string') {
    const [rgb, alpha] = colour(fill);
    return ['', `fill="${rgb}" fill-opacity="${alpha}"`];
  }
  const stops = fill.colors
    .map((c, i) => {
      const [rgb, alpha] = colour(c);
      return `<stop offset="${num(i / (fill.colors.length - 1))}" stop-color="${rgb}" stop-opacity="${alpha}"/>`;
    })
    .join('');
  if (fill.type === 'radial') return [`<radialGradient id="g" cx="0.5" cy="0.5" r="0.5">${stops}</radialGradient>`, 'fill="url(#g)"'];
  const a = (fill.angle * Math.PI) / 180;
  const [dx, dy] = [Math.cos(a) / 2, Math.sin(a) / 2];
  return [
    `<linearGradient id="g" x1="${num(0.5 - dx)}" y1="${num(0.5 - dy)}" x2="${num(0.5 + dx)}" y2="${num(0.5 + dy)}">${stops}</linearGradient>`,
    'fill="url(#g)"',
  ];
}

/** `#rgb[a]` / `#rrggbb[aa]` → `#rrggbb` and an opacity. */
function colour(hex: string): [string, string] {
  const { rgb, a } = rgbaOf(hex);
  return [rgb.toLowerCase(), num(Math.round(a * 1000) / 1000)];
}
