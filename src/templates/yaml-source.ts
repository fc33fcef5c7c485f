import { isNode, LineCounter, parseDocument, visit } from 'yaml';
import type { ErrorDetail } from '../common/errors';

/** A parsed movie file that still knows where each value came from, for `file:line` errors. */
export interface SourceDocument {
  file: string;
  data: unknown;
  /** 1-based line of the value at `path`, or of its nearest existing parent. */
  lineOf(path: ReadonlyArray<string | number>): number;
}

export type ParseResult = { ok: true; doc: SourceDocument } | { ok: false; errors: ErrorDetail[] };

/** Parses YAML (and so JSON, a subset of YAML 1.2) keeping positions. Pure. */
export function parseSource(file: string, text: string): ParseResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => ({
        field: `${file}:${lineCounter.linePos(e.pos[0]).line}`,
        message: e.message.split('\n')[0],
      })),
    };
  }
  const lineOf = (path: ReadonlyArray<string | number>): number => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return 1;
  };
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // Aliases are resolved here: one to a missing anchor, or an alias bomb, fails at this point.
    let line = 1;
    visit(doc, {
      Alias(_key, node) {
        if (node.range && (line === 1 || !node.resolve(doc))) {
          line = lineCounter.linePos(node.range[0]).line;
          if (!node.resolve(doc)) return visit.BREAK;
        }
      },
    });
    return { ok: false, errors: [{ field: `${file}:${line}`, message: (err as Error).message.split('\n')[0] }] };
  }
  return { ok: true, doc: { file, data, lineOf } };
}
