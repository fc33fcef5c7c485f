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
