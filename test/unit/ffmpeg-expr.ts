/**
 * A tiny evaluator for the subset of ffmpeg's expression language the compiler writes
 * (numbers, variables, + - * /, unary minus, parentheses and the functions below), so tests can
 * check that an expression gives, at many times, the value the JavaScript side computes.
 * Not a test file: test/unit/*.spec.ts import it.
 */
const FUNCTIONS: Record<string, (...a: number[]) => number> = {
  clip: (x, lo, hi) => Math.min(hi, Math.max(lo, x)),
  pow: (x, y) => Math.pow(x, y),
  if: (c, a, b) => (c !== 0 ? a : b),
  lt: (a, b) => (a < b ? 1 : 0),
  gte: (a, b) => (a >= b ? 1 : 0),
  exp: (x) => Math.exp(x),
  cos: (x) => Math.cos(x),
  sin: (x) => Math.sin(x),
  max: (a, b) => Math.max(a, b),
  min: (a, b) => Math.min(a, b),
  trunc: (x) => Math.trunc(x),
};

export function evalExpr(text: string, vars: Record<string, number>): number {
  const tokens = text.match(/\d+(?:\.\d+)?|\.\d+|[A-Za-z_][A-Za-z0-9_]*|[-+*/(),]/g) ?? [];
  if (tokens.join('') !== text.replace(/\s+/g, '')) throw new Error(`unexpected characters in ${text}`);
  let i = 0;
  const peek = () => tokens[i];
  const take = (want?: string) => {
    const tok = tokens[i++];
    if (want !== undefined && tok !== want) throw new Error(`expected ${want} at token ${i - 1} of ${text}, got ${tok}`);
    return tok;
  };
  const sum = (): number => {
    let v = product();
    while (peek() === '+' || peek() === '-') v = take() === '+' ? v + product() : v - product();
    return v;
  };
  const product = (): number => {
    let v = unary();
    while (peek() === '*' || peek() === '/') v = take() === '*' ? v * unary() : v / unary();
    return v;
  };
  const unary = (): number => (peek() === '-' ? (take(), -unary()) : primary());
  const primary = (): number => {
    const tok = take();
    if (tok === '(') {
      const v = sum();
      take(')');
      return v;
    }
    if (/^[\d.]/.test(tok)) return Number(tok);
    if (peek() === '(') {
      take('(');
      const args = [sum()];
      while (peek() === ',') {
        take(',');
        args.push(sum());
      }
      take(')');
      const fn = FUNCTIONS[tok];
      if (!fn) throw new Error(`unknown function ${tok}`);
      return fn(...args);
    }
    if (tok === 'PI') return Math.PI;
    if (!(tok in vars)) throw new Error(`unknown variable ${tok}`);
    return vars[tok];
  };
  const v = sum();
  if (i !== tokens.length) throw new Error(`trailing tokens in ${text}`);
  return v;
}
