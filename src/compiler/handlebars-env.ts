import Handlebars from 'handlebars';

export type HandlebarsEnv = typeof Handlebars;

/**
 * One isolated Handlebars environment per template: its partials never leak into another
 * template's. Helpers are total functions: a hostile value gives a harmless string, never a throw.
 */
export function createHandlebarsEnv(partials: Record<string, string> = {}): HandlebarsEnv {
  const hb = Handlebars.create();
  // A helper called without a value receives Handlebars' options object in its place.
  const isOptions = (v: unknown): v is Handlebars.HelperOptions =>
    typeof v === 'object' && v !== null && 'hash' in v && 'data' in v && 'name' in v;
  const str = (v: unknown): string => {
    if (v === undefined || v === null || isOptions(v)) return '';
    try {
      return String(v);
    } catch {
      return ''; // objects without a usable toString
    }
  };
  const opts = (args: unknown[]): Record<string, unknown> => {
    const last = args[args.length - 1];
    return isOptions(last) ? (last.hash as Record<string, unknown>) : {};
  };

  hb.registerHelper('upper', (v: unknown) => str(v).toLocaleUpperCase());
  hb.registerHelper('lower', (v: unknown) => str(v).toLocaleLowerCase());
  hb.registerHelper('trim', (v: unknown) => str(v).trim());
  hb.registerHelper('truncate', (v: unknown, n: unknown, ...rest: unknown[]) => {
    const chars = [...str(v)];
    const max = Number(n);
    const ellipsis = typeof opts(rest).ellipsis === 'string' ? opts(rest).ellipsis : '…';
    return Number.isFinite(max) && chars.length > max ? chars.slice(0, Math.max(0, max)).join('') + ellipsis : chars.join('');
  });
  /** `{{default name "friend"}}`: the fallback when the value is empty. */
  hb.registerHelper('default', (v: unknown, fallback: unknown) => (str(v) === '' ? str(fallback) : v));
  /** `{{add @index 1}}` for 1-based numbering. */
  hb.registerHelper('add', (a: unknown, b: unknown) => Number(a) + Number(b));
  /** `{{number price decimals=2 locale="de-DE" style="currency" currency="EUR"}}` */
  hb.registerHelper('number', (v: unknown, ...rest: unknown[]) => {
    const n = Number(v);
    if (!Number.isFinite(n)) return str(v);
    const h = opts(rest);
    const decimals = h.decimals === undefined ? undefined : Math.min(20, Math.max(0, Number(h.decimals) || 0));
    try {
      return new Intl.NumberFormat(typeof h.locale === 'string' ? h.locale : 'en-US', {
        style: h.style === 'currency' || h.style === 'percent' ? h.style : 'decimal',
        currency: typeof h.currency === 'string' ? h.currency : undefined,
        minimumFractionDigits: decimals,
        maximumFractionDigits: decimals,
      }).format(n);
    } catch {
      return String(n);
    }
  });
  /** `{{date when format="long" locale="fr-FR"}}`; format: short|medium|long|full|iso|year. */
  hb.registerHelper('date', (v: unknown, ...rest: unknown[]) => {
    const h = opts(rest);
    if (str(v) === '') return '';
    const d = new Date(typeof v === 'number' ? v : str(v));
    if (Number.isNaN(d.getTime())) return str(v);
    const format = typeof h.format === 'string' ? h.format : 'medium';
    if (format === 'iso') return d.toISOString().slice(0, 10);
    if (format === 'year') return String(d.getUTCFullYear());
    try {
      return new Intl.DateTimeFormat(typeof h.locale === 'string' ? h.locale : 'en-US', {
        dateStyle: format === 'short' || format === 'long' || format === 'full' ? format : 'medium',
        timeZone: 'UTC', // renders must not depend on the render node's time zone
      }).format(d);
    } catch {
      return d.toISOString().slice(0, 10);
    }
  });
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  registerLogicHelpers(hb, isOptions);

  for (const [name, source] of Object.entries(partials)) hb.registerPartial(name, source);
  return hb;
}

export interface TemplateFunctions {
  /** For movie-file strings: no HTML escaping, the value is plain text headed for a rasteriser. */
  text(source: string): (context: unknown, data?: Record<string, unknown>) => string;
  /** For `.svg.hbs` files: values are XML-escaped so a param can never inject markup. */
  markup(source: string): (context: unknown, data?: Record<string, unknown>) => string;
}

export function templateFunctions(hb: HandlebarsEnv): TemplateFunctions {
  const cache = new Map<string, HandlebarsTemplateDelegate>();
  const compile = (source: string, noEscape: boolean) => {
    const key = `${noEscape ? 't' : 'm'}:${source}`;
    let fn = cache.get(key);
    if (!fn) {
      fn = hb.compile(source, { noEscape });
      cache.set(key, fn);
    }
    const compiled = fn;
    return (context: unknown, data?: Record<string, unknown>) => compiled(context, { data });
  };
  return { text: (s) => compile(s, true), markup: (s) => compile(s, false) };
}

// ---- logic helpers: arithmetic, comparison, boolean, range, length --------------------

/** `range` never yields more than this: a template cannot loop a million times over a param. */
export const MAX_RANGE_ITEMS = 1000;

/**
 * Arithmetic, comparison, boolean, `range` and `length` helpers. Total functions: a value that
 * is not a number gives an empty string (arithmetic) or false (comparison), never a throw, and
 * never `NaN` or `Infinity` in the output.
 */
function registerLogicHelpers(hb: HandlebarsEnv, isOptions: (v: unknown) => boolean): void {
  // Handlebars passes its options object last; helpers see only the values.
  const values = (args: unknown[]): unknown[] => (args.length && isOptions(args[args.length - 1]) ? args.slice(0, -1) : args);
  const out = (n: number): number | string => (Number.isFinite(n) ? n : '');
  const arith = (name: string, op: (a: number, b: number) => number) =>
    hb.registerHelper(name, (...args: unknown[]) => {
      const [a, b] = values(args);
      return out(op(toNumber(a), toNumber(b)));
    });

  arith('sub', (a, b) => a - b);
  arith('mul', (a, b) => a * b);
  arith('div', (a, b) => (b === 0 ? NaN : a / b));
  arith('mod', (a, b) => (b === 0 ? NaN : a % b));
  const extreme = (name: string, pick: (...n: number[]) => number) =>
    hb.registerHelper(name, (...args: unknown[]) => {
      const ns = values(args).map(toNumber);
      return ns.length === 0 || ns.some((n) => Number.isNaN(n)) ? '' : out(pick(...ns));
    });
  extreme('min', Math.min);
  extreme('max', Math.max);
  /** `{{round v}}` or `{{round v 2}}` (decimals 0–10). */
  hb.registerHelper('round', (...args: unknown[]) => {
    const [v, d] = values(args);
    const n = toNumber(v);
    const decimals = d === undefined ? 0 : Math.min(10, Math.max(0, Math.trunc(toNumber(d)) || 0));
    if (!Number.isFinite(n)) return '';
    const f = 10 ** decimals;
    return out(Math.round(n * f) / f);
  });
  for (const [name, fn] of [['floor', Math.floor], ['ceil', Math.ceil], ['abs', Math.abs]] as const) {
    hb.registerHelper(name, (...args: unknown[]) => out(fn(toNumber(values(args)[0]))));
  }

  hb.registerHelper('ne', (...args: unknown[]) => {
    const [a, b] = values(args);
    return a !== b;
  });
  const compare = (name: string, test: (order: number) => boolean) =>
    hb.registerHelper(name, (...args: unknown[]) => {
      const [a, b] = values(args);
      const order = compareValues(a, b);
      return order !== undefined && test(order);
    });
  compare('gt', (o) => o > 0);
  compare('gte', (o) => o >= 0);
  compare('lt', (o) => o < 0);
  compare('lte', (o) => o <= 0);

  hb.registerHelper('and', (...args: unknown[]) => {
    const vs = values(args);
    return vs.length > 0 && vs.every(truthy);
  });
  hb.registerHelper('or', (...args: unknown[]) => values(args).some(truthy));
  hb.registerHelper('not', (...args: unknown[]) => !truthy(values(args)[0]));

  /** `{{#each (range 10 1)}}`: inclusive, up or down, optional step; at most MAX_RANGE_ITEMS numbers. */
  hb.registerHelper('range', (...args: unknown[]) => {
    const [from, to, step] = values(args);
    return numberRange(toNumber(from), toNumber(to), step === undefined ? 1 : toNumber(step));
  });
  /** Arrays: items; strings: graphemes (an emoji or a flag is one); objects: keys. */
  hb.registerHelper('length', (...args: unknown[]) => {
    const v = values(args)[0];
    if (Array.isArray(v)) return v.length;
    if (typeof v === 'string') return graphemes(v);
    if (v && typeof v === 'object') return Object.keys(v).length;
    return 0;
  });
}

/** Numbers, and strings that hold one; anything else is NaN. */
function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  return NaN;
}

/** Numerically when both are numbers (or numeric strings), else as text; undefined when incomparable. */
function compareValues(a: unknown, b: unknown): number | undefined {
  const [x, y] = [toNumber(a), toNumber(b)];
  if (!Number.isNaN(x) && !Number.isNaN(y)) return x === y ? 0 : x < y ? -1 : 1;
  if (typeof a === 'string' && typeof b === 'string') return a === b ? 0 : a < b ? -1 : 1;
  return undefined;
}

/** Handlebars' own notion: empty lists are false too. */
function truthy(v: unknown): boolean {
  return Array.isArray(v) ? v.length > 0 : Boolean(v);
}

/** from..to inclusive, in steps of |step| towards `to`; empty when a bound or the step is unusable. */
export function numberRange(from: number, to: number, step = 1): number[] {
  const size = Math.abs(step);
  if (!Number.isFinite(from) || !Number.isFinite(to) || !Number.isFinite(size) || size === 0) return [];
  const sign = to >= from ? 1 : -1;
  const count = Math.min(MAX_RANGE_ITEMS, Math.floor(Math.abs(to - from) / size + 1e-9) + 1);
  // from + i·step, not repeated addition: 0.1 steps do not drift.
  return Array.from({ length: count }, (_, i) => Number((from + sign * i * size).toPrecision(12)));
}

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
function graphemes(s: string): number {
  let n = 0;
  for (const _ of segmenter.segment(s)) n++;
  return n;
}
