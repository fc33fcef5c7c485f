import type { BLEND_MODES } from '../templates/movie.schema';
import { rgbaOf } from './colors';
import type { KeyframeTracks } from './keyframes';
import { num } from './easing';

/** The schema's blend modes: ffmpeg's blend filter takes the same names. */
export type BlendMode = (typeof BLEND_MODES)[number];

/** A layer's looks after planning: all numbers final, the mask prepared as a grey PNG of the layer's content size. */
export interface PlannedLook {
  /** x and y tracks are offsets from the layer's planned place (the plan subtracts the layer's own x, y). */
  keyframes?: KeyframeTracks;
  rotation?: number;
  blur?: number;
  filters?: { grayscale?: boolean; brightness?: number; contrast?: number; saturation?: number; tint?: string };
  /** Grey PNG (white = shown) exactly the size of the layer's content. */
  maskPath?: string;
  shadow?: { x: number; y: number; blur: number; color: string };
  blendMode?: BlendMode;
}

/** yuv420 needs even sizes and even padding. */
export function evenUp(n: number): number {
  return Math.max(2, Math.ceil(n / 2) * 2);
}

/** Size of a w×h picture turned by `degrees`, rounded up to even. */
export function rotatedSize(w: number, h: number, degrees: number): { w: number; h: number } {
  const a = (degrees * Math.PI) / 180;
  const c = Math.abs(Math.cos(a));
  const s = Math.abs(Math.sin(a));
  return { w: evenUp(w * c + h * s - 1e-9), h: evenUp(w * s + h * c - 1e-9) };
}

/** A colour as BT.709 limited-range Y, U, V (what the graph works in) and its alpha 0–1. */
export function yuvOf(hex: string): { y: number; u: number; v: number; a: number } {
  const c = rgbaOf(hex);
  const [r, g, b, a] = [c.r / 255, c.g / 255, c.b / 255, c.a];
  const Y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  const U = (b - Y) / 1.8556;
  const V = (r - Y) / 1.5748;
  return { y: Math.round(16 + 219 * Y), u: Math.round(128 + 224 * U), v: Math.round(128 + 224 * V), a };
}

/** Colour filters as ffmpeg filters, in the order grey, saturation, brightness/contrast, tint. */
export function colorFilters(filters: NonNullable<PlannedLook['filters']>): string[] {
  const out: string[] = [];
  if (filters.grayscale) out.push('hue=s=0');
  else if (filters.saturation !== undefined && filters.saturation !== 1) out.push(`hue=s=${num(filters.saturation)}`);
  const brightness = filters.brightness ?? 0;
  const contrast = filters.contrast ?? 1;
  if (brightness !== 0 || contrast !== 1) out.push(`eq=brightness=${num(brightness)}:contrast=${num(contrast)}`);
  if (filters.tint) {
    // Each pixel keeps its luma (its light and shade) and takes the tint's chroma, by the tint's alpha.
    // Not colorize: its `mix` mixes lightness, not colour, and at lightness 0 its colour is black (grey out).
    const { u, v, a } = yuvOf(filters.tint);
    const alpha = num(Math.round(a * 1000) / 1000);
    out.push(`lutyuv=y=val:u='val+${alpha}*(${u}-val)':v='val+${alpha}*(${v}-val)':a=val`);
  }
  return out;
}

/** True when a look changes the content once (mask, filters, blur, shadow, rotation), not over time. */
export function hasStaticLook(look: PlannedLook | undefined): boolean {
  if (!look) return false;
  return Boolean(look.maskPath || (look.filters && colorFilters(look.filters).length) || look.blur || look.shadow || look.rotation);
}
