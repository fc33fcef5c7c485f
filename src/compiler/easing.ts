import type { Easing } from '../templates/movie.schema';

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

/** An easing curve applied to a progress expression `p`. */
export function easeExpr(easing: Easing, p: string): string {
  switch (easing) {
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

/** The same curves in JavaScript, for tests and for checking expressions against expectations. */
export function ease(easing: Easing, p: number): number {
  const c = Math.min(1, Math.max(0, p));
  switch (easing) {
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
