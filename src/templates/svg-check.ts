/**
 * Checks of `.svg.hbs` graphics that librsvg would otherwise answer with a blank raster or
 * "could not be read": XML well-formedness with a line, and font families that do not exist.
 * Pure: markup in, problems out.
 */
export interface SvgProblem {
  line: number;
  message: string;
}

const NAME = /[A-Za-z_:\p{L}][-A-Za-z0-9_:.\p{L}\p{N}]*/uy;
const SPACE = /[ \t\r\n]*/y;
const PREDEFINED = new Set(['amp', 'lt', 'gt', 'quot', 'apos']);
// eslint-disable-next-line no-control-regex -- finding them is the point
const FORBIDDEN_CHAR = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;

/** The first well-formedness error of an XML document, or undefined when it is well-formed. */
export function xmlProblem(xml: string): SvgProblem | undefined {
  const lineStarts = [0];
  for (let i = xml.indexOf('\n'); i >= 0; i = xml.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  const lineAt = (index: number) => {
    let [lo, hi] = [0, lineStarts.length - 1];
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const fail = (index: number, message: string): SvgProblem => ({ line: lineAt(index), message });

  const bad = FORBIDDEN_CHAR.exec(xml);
  if (bad) return fail(bad.index, `control character U+${bad[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()} is not allowed in XML`);

  let declaresEntities = false;
  const open: Array<{ name: string; at: number }> = [];
  let roots = 0;
  let i = xml.charCodeAt(0) === 0xfeff ? 1 : 0;

  const name = (at: number): string | undefined => {
    NAME.lastIndex = at;
    return NAME.exec(xml)?.[0];
  };
  const skipSpace = (at: number) => {
    SPACE.lastIndex = at;
    SPACE.exec(xml);
    return SPACE.lastIndex;
  };
  /** `&…;` at `at`: the index after it, or a problem. */
  const reference = (at: number): number | SvgProblem => {
    const m = /&(?:#[0-9]+|#x[0-9a-fA-F]+|([A-Za-z_:][-A-Za-z0-9_:.]*));/y;
    m.lastIndex = at;
    const found = m.exec(xml);
    if (!found) return fail(at, 'a bare "&" (write &amp;)');
    if (found[1] !== undefined && !PREDEFINED.has(found[1]) && !declaresEntities) return fail(at, `unknown entity "&${found[1].slice(0, 40)};"`);
    return m.lastIndex;
  };

  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const textEnd = lt < 0 ? xml.length : lt;
    // Text: references must be whole; outside the root only white space may stand.
    for (let amp = xml.indexOf('&', i); amp >= 0 && amp < textEnd; amp = xml.indexOf('&', amp + 1)) {
      const r = reference(amp);
      if (typeof r !== 'number') return r;
    }
    if (open.length === 0) {
      const stray = /\S/.exec(xml.slice(i, textEnd));
      if (stray) return fail(i + stray.index, roots ? 'text after the root element' : 'text before the root element');
    }
    if (lt < 0) break;
    i = lt;
    if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i + 4);
      if (end < 0) return fail(i, 'a comment that is never closed (-->)');
      i = end + 3;
    } else if (xml.startsWith('<![CDATA[', i)) {
      if (open.length === 0) return fail(i, 'CDATA outside the root element');
      const end = xml.indexOf(']]>', i);
      if (end < 0) return fail(i, 'a CDATA section that is never closed (]]>)');
      i = end + 3;
    } else if (xml.startsWith('<?', i)) {
      const end = xml.indexOf('?>', i + 2);
      if (end < 0) return fail(i, 'a processing instruction that is never closed (?>)');
      i = end + 2;
    } else if (xml.startsWith('<!DOCTYPE', i)) {
      if (roots || open.length) return fail(i, 'a DOCTYPE after the root element started');
      const subset = xml.indexOf('[', i);
      const close = xml.indexOf('>', i);
      if (close < 0) return fail(i, 'a DOCTYPE that is never closed');
      if (subset >= 0 && subset < close) {
        declaresEntities = true;
        const end = xml.indexOf(']', subset);
        const after = end < 0 ? -1 : xml.indexOf('>', end);
        if (after < 0) return fail(i, 'a DOCTYPE that is never closed');
        i = after + 1;
      } else i = close + 1;
    } else if (xml.startsWith('</', i)) {
      const tag = name(i + 2);
      if (!tag) return fail(i, 'an end tag without a name');
      const end = skipSpace(i + 2 + tag.length);
      if (xml[end] !== '>') return fail(i, `end tag </${tag.slice(0, 40)}> is not closed with ">"`);
      const top = open.pop();
      if (!top) return fail(i, `end tag </${tag.slice(0, 40)}> without a start tag`);
      if (top.name !== tag) return fail(i, `end tag </${tag.slice(0, 40)}> does not match <${top.name.slice(0, 40)}> (line ${lineAt(top.at)})`);
      i = end + 1;
    } else {
      const tag = name(i + 1);
      if (!tag) return fail(i, 'a "<" that starts no tag (write &lt;)');
      if (open.length === 0 && roots) return fail(i, `a second root element <${tag.slice(0, 40)}>`);
      let at = i + 1 + tag.length;
      const seen = new Set<string>();
      for (;;) {
        const afterSpace = skipSpace(at);
        if (xml.startsWith('/>', afterSpace)) {
          at = afterSpace + 2;
          if (open.length === 0) roots++;
          break;
        }
        if (xml[afterSpace] === '>') {
          at = afterSpace + 1;
          if (open.length === 0) roots++;
          open.push({ name: tag, at: i });
          break;
        }
        if (afterSpace === at) return fail(afterSpace, afterSpace >= xml.length ? `tag <${tag.slice(0, 40)}> is never closed` : `unexpected "${xml[afterSpace]}" in tag <${tag.slice(0, 40)}>`);
        const attr = name(afterSpace);
        if (!attr) return fail(afterSpace, `unexpected "${xml[afterSpace]}" in tag <${tag.slice(0, 40)}>`);
        if (seen.has(attr)) return fail(afterSpace, `attribute "${attr.slice(0, 40)}" appears twice in <${tag.slice(0, 40)}>`);
        seen.add(attr);
        const eq = skipSpace(afterSpace + attr.length);
        if (xml[eq] !== '=') return fail(afterSpace, `attribute "${attr.slice(0, 40)}" has no value (write ${attr.slice(0, 40)}="…")`);
        const quoteAt = skipSpace(eq + 1);
        const quote = xml[quoteAt];
        if (quote !== '"' && quote !== "'") return fail(quoteAt, `the value of "${attr.slice(0, 40)}" is not in quotes`);
        const close = xml.indexOf(quote, quoteAt + 1);
        if (close < 0) return fail(quoteAt, `the value of "${attr.slice(0, 40)}" is never closed`);
        const lessThan = xml.indexOf('<', quoteAt + 1);
        if (lessThan >= 0 && lessThan < close) return fail(lessThan, `a "<" in the value of "${attr.slice(0, 40)}"`);
        for (let amp = xml.indexOf('&', quoteAt + 1); amp >= 0 && amp < close; amp = xml.indexOf('&', amp + 1)) {
          const r = reference(amp);
          if (typeof r !== 'number') return r;
        }
        at = close + 1;
      }
      i = at;
    }
  }
  const unclosed = open.pop();
  if (unclosed) return fail(unclosed.at, `<${unclosed.name.slice(0, 40)}> is never closed`);
  if (!roots) return fail(0, 'no root element');
  return undefined;
}

/** CSS generic families, which fontconfig always maps to an installed font. */
export const GENERIC_FAMILIES = new Set([
  'serif', 'sans-serif', 'monospace', 'cursive', 'fantasy', 'system-ui', 'ui-serif', 'ui-sans-serif', 'ui-monospace', 'ui-rounded',
  'emoji', 'math', 'fangsong', 'inherit', 'initial', 'unset', 'revert',
]);

/** Every font family an SVG names (font-family attributes and CSS), with its line; templated ones are left out. */
export function svgFontFamilies(source: string): Array<{ line: number; family: string }> {
  const out: Array<{ line: number; family: string }> = [];
  const lines = source.split('\n');
  lines.forEach((text, index) => {
    // font-family="a, b" (attribute) or font-family: 'a', b (CSS, ended by ; } < or the attribute's ")
    for (const m of text.replace(/&quot;|&apos;/g, "'").matchAll(/font-family\s*(?:=\s*(["'])(.*?)\1|:\s*([^;}<>"]+))/g)) {
      const list = m[2] ?? m[3] ?? '';
      if (list.includes('{{')) continue;
      for (const raw of list.split(',')) {
        const family = raw.trim().replace(/^(["'])(.*)\1$/, '$2').trim();
        if (family) out.push({ line: index + 1, family });
      }
    }
  });
  return out;
}
