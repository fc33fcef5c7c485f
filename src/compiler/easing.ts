/**
 * Easing curves, named in templates as strings:
 * - `linear`, `easeIn`, `easeOut`, `easeInOut` (quadratic, v1's curves);
 * - `ease`, `ease-in`, `ease-out`, `ease-in-out` (CSS's cubic-bezier presets);
 * - `cubic-bezier(x1, y1, x2, y2)` (CSS: x1 and x2 in [0, 1], y free, so curves may overshoot);
 * - `spring` or `spring(damping)`: a damped spring settling at the end (damping 0.1–1, default 0.45).
 *
 * Every curve has two forms that agree: `ease()` in JavaScript (keyframes computed per frame,
 * tests) and `easeExpr()` as an ffmpeg expression (animations evaluated by ffmpeg per frame).
 */
export type EasingSpec =
  | { kind: 'quad'; name: 'linear' | 'easeIn' | 'easeOut' | 'easeInOut' }
  | { kind: 'bezier'; x1: number; y1: number; x2: number; y2: number }
  | { kind: 'spring'; damping: number };

const QUAD = ['linear', 'easeIn', 'easeOut', 'easeInOut'] as const;
const CSS: Record<string, [number, number, number, number]> = {
  ease: [0.25, 0.1, 0.25, 1],
  'ease-in': [0.42, 0, 1, 1],
  'ease-out': [0, 0, 0.58, 1],
  'ease-in-out': [0.42, 0, 0.58, 1],
};
const NUMBER = '\\s*(-?\\d+(?:\\.\\d+)?|-?\\.\\d+)\\s*';
const BEZIER = new RegExp(`^cubic-bezier\\(${NUMBER},${NUMBER},${NUMBER},${NUMBER}\\)$`);
const SPRING = new RegExp(`^spring(?:\\(${NUMBER}\\))?$`);

/** The names a designer may write, for error messages and the README. */
export const EASING_HELP = 'linear, easeIn, easeOut, easeInOut, ease, ease-in, ease-out, ease-in-out, cubic-bezier(x1, y1, x2, y2), spring or spring(damping)';

/** A template's easing string → its curve, or a message saying what is wrong. */
export function parseEasing(text: string): EasingSpec | string {
  const s = text.trim();
  if ((QUAD as readonly string[]).includes(s)) return { kind: 'quad', name: s as (typeof QUAD)[number] };
  if (CSS[s]) {
    const [x1, y1, x2, y2] = CSS[s];
    return { kind: 'bezier', x1, y1, x2, y2 };
  }
  const b = BEZIER.exec(s);
  if (b) {
    const [x1, y1, x2, y2] = b.slice(1).map(Number);
    if (x1 < 0 || x1 > 1 || x2 < 0 || x2 > 1) return 'cubic-bezier x values must be between 0 and 1';
    if (Math.abs(y1) > 10 || Math.abs(y2) > 10) return 'cubic-bezier y values must be between -10 and 10';
    return { kind: 'bezier', x1, y1, x2, y2 };
  }
  const sp = SPRING.exec(s);
  if (sp) {
    const damping = sp[1] === undefined ? 0.45 : Number(sp[1]);
    if (!(damping >= 0.1 && damping <= 1)) return 'spring damping must be between 0.1 and 1';
    return { kind: 'spring', damping };
  }
  return `unknown easing "${s.slice(0, 40)}": use ${EASING_HELP}`;
}

function spec(easing: string | EasingSpec): EasingSpec {
  if (typeof easing !== 'string') return easing;
  const parsed = parseEasing(easing);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
}

/** Decimal for a filter expression: fixed precision so the same plan always gives the same graph. */
export function num(n: number): string {
  if (!Number.isFinite(n)) throw new Error(`not a finite number: ${n}`);
  const s = n.toFixed(6).replace(/\.?0+$/, '');
  return s === '-0' ? '0' : s;
}

/** Progress 0→1 of an animation running from `startSec` for `durSec`, as an ffmpeg expression of `t`. */
export function progressExpr(startSec: number, durSec: number, time = 't'): string {
  return `clip((${time}-${num(startSec)})/${num(durSec)},0,1)`;
}

/** Segments of the piecewise-linear form of a cubic-bezier in ffmpeg (error ≈ 0.3 % of the move for CSS's curves; 16 gave 0.6 %). */
const BEZIER_SEGMENTS = 24;

/** An easing curve applied to a progress expression `p`. */
export function easeExpr(easing: string | EasingSpec, p: string): string {
  const e = spec(easing);
  if (e.kind === 'quad') {
    switch (e.name) {
      case 'linear':
        return p;
      case 'easeIn':
        return `pow(${p},2)`;
      case 'easeOut':
        return `(1-pow(1-${p},2))`;
      case 'easeInOut':
        return `if(lt(${p},0.5),2*pow(${p},2),1-pow(2-2*${p},2)/2)`;
    }
  }
  if (e.kind === 'spring') {
    const { omega, omegaD, zeta } = springConstants(e.damping);
    // Pinned to 1 at p = 1 like ease(): critically damped, it is still 0.12 % short there.
    if (omegaD === 0) return `if(gte(${p},1),1,1-exp(-${num(omega)}*${p})*(1+${num(omega)}*${p}))`;
    // 1 − e^(−ζωp)·(cos ωd·p + ζω/ωd · sin ωd·p), pinned to 1 at p = 1
    return `if(gte(${p},1),1,1-exp(-${num(zeta * omega)}*${p})*(cos(${num(omegaD)}*${p})+${num((zeta * omega) / omegaD)}*sin(${num(omegaD)}*${p})))`;
  }
  // ffmpeg expressions cannot invert x(t) of a bezier: sample it evenly in progress and interpolate
  // (nested ifs, no variables: the evaluation order of an expression's operands is not defined).
  const ys = Array.from({ length: BEZIER_SEGMENTS + 1 }, (_, i) => bezierAt(e, i / BEZIER_SEGMENTS));
  const segment = (k: number) => `${num(ys[k])}+${num(ys[k + 1] - ys[k])}*(${p}*${BEZIER_SEGMENTS}-${k})`;
  let expr = segment(BEZIER_SEGMENTS - 1);
  for (let k = BEZIER_SEGMENTS - 2; k >= 0; k--) expr = `if(lt(${p},${num((k + 1) / BEZIER_SEGMENTS)}),${segment(k)},${expr})`;
  return `(${expr})`;
}

/** The same curves in JavaScript. Progress is clamped to [0, 1]; springs and beziers may overshoot in between. */
export function ease(easing: string | EasingSpec, p: number): number {
  const e = spec(easing);
  const c = Math.min(1, Math.max(0, p));
  if (e.kind === 'quad') {
    switch (e.name) {
      case 'linear':
        return c;
      case 'easeIn':
        return c * c;
      case 'easeOut':
        return 1 - (1 - c) * (1 - c);
      case 'easeInOut':
        return c < 0.5 ? 2 * c * c : 1 - Math.pow(2 - 2 * c, 2) / 2;
    }
  }
  if (e.kind === 'spring') {
    if (c >= 1) return 1;
    const { omega, omegaD, zeta } = springConstants(e.damping);
    if (omegaD === 0) return 1 - Math.exp(-omega * c) * (1 + omega * c);
    return 1 - Math.exp(-zeta * omega * c) * (Math.cos(omegaD * c) + ((zeta * omega) / omegaD) * Math.sin(omegaD * c));
  }
  return bezierAt(e, c);
}

/** Spring constants chosen so the motion has settled (within 0.2 %) by the end of the animation. */
function springConstants(damping: number): { zeta: number; omega: number; omegaD: number } {
  const zeta = Math.min(1, damping);
  if (zeta >= 1) return { zeta, omega: 9, omegaD: 0 };
  const omega = Math.log(500) / zeta;
  return { zeta, omega, omegaD: omega * Math.sqrt(1 - zeta * zeta) };
}

/** y of a CSS cubic-bezier at x (Newton's method, bisection when it stalls). */
function bezierAt(b: Extract<EasingSpec, { kind: 'bezier' }>, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const coord = (a1: number, a2: number, t: number) => 3 * a1 * t * (1 - t) * (1 - t) + 3 * a2 * t * t * (1 - t) + t * t * t;
  const slope = (a1: number, a2: number, t: number) => 3 * a1 * (1 - t) * (1 - t) + 6 * (a2 - a1) * t * (1 - t) + 3 * (1 - a2) * t * t;
  let t = x;
  for (let i = 0; i < 8; i++) {
    const dx = coord(b.x1, b.x2, t) - x;
    if (Math.abs(dx) < 1e-7) return coord(b.y1, b.y2, t);
    const d = slope(b.x1, b.x2, t);
    if (Math.abs(d) < 1e-6) break;
    t -= dx / d;
  }
  let lo = 0;
  let hi = 1;
  t = x;
  for (let i = 0; i < 40; i++) {
    const v = coord(b.x1, b.x2, t);
    if (Math.abs(v - x) < 1e-7) break;
    if (v < x) lo = t;
    else hi = t;
    t = (lo + hi) / 2;
  }
  return coord(b.y1, b.y2, t);
}
