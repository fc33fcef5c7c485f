import Handlebars from 'handlebars';

/**
 * Names a template may use, so that a typo is an error at load time instead of empty text in
 * a finished video. Pure: sources and names in, problems out.
 */
export interface ReferenceScope {
  /** Variables and constants: what `{{name}}` may read at the top level. */
  roots: ReadonlySet<string>;
  helpers: ReadonlySet<string>;
  partials: ReadonlySet<string>;
  /** Inside an `each` scene: `item` and `@index`, `@first`, `@last`, `@count`. */
  inEachScene: boolean;
  /** A partial may read the names its callers pass (`{{> sig who=name}}`). */
  extraRoots?: ReadonlySet<string>;
}

export interface ReferenceProblem {
  /** 1-based line inside the source. */
  line: number;
  message: string;
}

/** How a partial is called: with the caller's root context, or with another (then it is not checked). */
export interface PartialUse {
  name: string;
  rootContext: boolean;
  hashKeys: string[];
}

const BUILT_IN_BLOCKS = new Set(['if', 'unless', 'each', 'with', 'lookup', 'log']);
/** Blocks whose body sees another context (the item), where relative paths are the item's. */
const CONTEXT_BLOCKS = new Set(['each', 'with']);
const EACH_SCENE_DATA = new Set(['index', 'first', 'last', 'count']);
const EACH_BLOCK_DATA = new Set(['index', 'key', 'first', 'last']);

type Node = hbs.AST.Node;
type Path = hbs.AST.PathExpression;
interface Frame {
  /** Relative paths here are an item's, not the root's. */
  changesContext: boolean;
  blockParams: string[];
  /** An #each body: @index, @key, @first, @last are set. */
  eachData: boolean;
}

/** Every unknown name in one source; an unparsable source has none here (its syntax is reported elsewhere). */
export function unknownReferences(source: string, scope: ReferenceScope, partialUses: PartialUse[] = []): ReferenceProblem[] {
  let ast: hbs.AST.Program;
  try {
    ast = Handlebars.parse(source);
  } catch {
    return [];
  }
  const problems: ReferenceProblem[] = [];
  const stack: Frame[] = [];
  const roots = new Set([...scope.roots, ...(scope.extraRoots ?? [])]);
  const rootCandidates = [...roots, ...(scope.inEachScene ? ['item'] : [])];

  const report = (node: Node, name: string, candidates: string[], what = 'variable') => {
    const hint = closest(name, candidates);
    problems.push({
      line: node.loc?.start.line ?? 1,
      message: `unknown ${what} "${clip(name)}" in ${clip(statementText(source, node), 80)}${hint ? ` (did you mean "${hint}"?)` : ''}`,
    });
  };

  const inContext = () => stack.some((f) => f.changesContext);
  const isBlockParam = (name: string) => stack.some((f) => f.blockParams.includes(name));

  /** A path read as a value; `callee`: in helper position, where a helper name is fine. */
  const checkPath = (path: Path, statement: Node, callee: boolean) => {
    const head = path.parts[0];
    if (path.data) {
      if (head === 'root') {
        if (path.parts[1] !== undefined && !roots.has(path.parts[1]) && !(scope.inEachScene && path.parts[1] === 'item')) {
          report(statement, path.parts[1], rootCandidates);
        }
        return;
      }
      const known = stack.some((f) => f.eachData) ? new Set([...EACH_BLOCK_DATA, ...(scope.inEachScene ? EACH_SCENE_DATA : [])]) : scope.inEachScene ? EACH_SCENE_DATA : new Set<string>();
      if (!known.has(head)) {
        const where = scope.inEachScene || stack.some((f) => f.eachData) ? '' : ' (only `each` scenes and blocks set @index, @first, @last)';
        problems.push({ line: statement.loc?.start.line ?? 1, message: `unknown data variable "@${clip(head)}" in ${clip(statementText(source, statement), 80)}${where}` });
      }
      return;
    }
    if (head === undefined) return; // `this`, `.`
    const explicitlyRelative = /^(this\b|\.\/)/.test(path.original);
    if (path.depth > 0) {
      // `../` out of every context-changing block lands on the root.
      const contexts = stack.filter((f) => f.changesContext).length;
      if (path.depth < contexts) return;
    } else {
      if (!explicitlyRelative && isBlockParam(head)) return;
      if (inContext()) return; // the item's fields: not knowable here
      if (!explicitlyRelative && callee && path.parts.length === 1 && scope.helpers.has(head)) return;
    }
    if (roots.has(head) || (scope.inEachScene && head === 'item')) return;
    report(statement, head, callee ? [...rootCandidates, ...scope.helpers] : rootCandidates);
  };

  const expression = (node: hbs.AST.Expression | undefined, statement: Node, callee = false) => {
    if (!node) return;
    if (node.type === 'PathExpression') checkPath(node as Path, statement, callee);
    else if (node.type === 'SubExpression') call(node as hbs.AST.SubExpression, statement);
  };
  const call = (node: hbs.AST.SubExpression | hbs.AST.MustacheStatement | hbs.AST.BlockStatement, statement: Node) => {
    const hasArgs = node.params.length > 0 || (node.hash?.pairs.length ?? 0) > 0;
    const path = node.path as Path;
    // `{{name}}` may be a helper or a value; `{{name x}}` must be a helper.
    if (path.type === 'PathExpression' && hasArgs && !path.data && path.depth === 0 && path.parts.length === 1 && !scope.helpers.has(path.parts[0])) {
      report(statement, path.parts[0], [...scope.helpers], 'helper');
    } else expression(node.path, statement, true);
    for (const p of node.params) expression(p, statement);
    for (const pair of node.hash?.pairs ?? []) expression(pair.value, statement);
  };

  const visit = (node: Node | undefined | null): void => {
    if (!node) return;
    switch (node.type) {
      case 'Program':
        for (const child of (node as hbs.AST.Program).body) visit(child);
        return;
      case 'MustacheStatement':
        call(node as hbs.AST.MustacheStatement, node);
        return;
      case 'BlockStatement': {
        const block = node as hbs.AST.BlockStatement;
        call(block, node);
        const name = block.path.type === 'PathExpression' ? (block.path as Path).original : '';
        // A section over a value (`{{#person}}`) changes context like #with.
        const changesContext = CONTEXT_BLOCKS.has(name) || !BUILT_IN_BLOCKS.has(name);
        stack.push({ changesContext, blockParams: block.program?.blockParams ?? [], eachData: name === 'each' });
        visit(block.program);
        stack.pop();
        visit(block.inverse); // {{else}} runs in the outer context
        return;
      }
      case 'PartialStatement':
      case 'PartialBlockStatement': {
        const partial = node as hbs.AST.PartialStatement;
        const name = partial.name.type === 'PathExpression' ? (partial.name as Path).original : undefined;
        if (name !== undefined && !scope.partials.has(name)) report(node, name, [...scope.partials], 'partial');
        for (const p of partial.params) expression(p, node);
        for (const pair of partial.hash?.pairs ?? []) expression(pair.value, node);
        if (name !== undefined) {
          partialUses.push({ name, rootContext: partial.params.length === 0 && !inContext(), hashKeys: (partial.hash?.pairs ?? []).map((p) => p.key) });
        }
        if (node.type === 'PartialBlockStatement') visit((node as hbs.AST.PartialBlockStatement).program);
        return;
      }
      default:
        return; // content, comments, decorators
    }
  };
  visit(ast);
  return problems;
}

/** The `{{…}}` a node came from, for the message. */
function statementText(source: string, node: Node): string {
  const loc = node.loc;
  if (!loc) return '';
  const lines = source.split('\n');
  const first = lines[loc.start.line - 1] ?? '';
  // A block: its opening tag is enough to find it.
  if (node.type === 'BlockStatement') {
    const close = first.indexOf('}}', loc.start.column);
    return close < 0 ? `${first.slice(loc.start.column)}…` : first.slice(loc.start.column, close + 2);
  }
  if (loc.start.line === loc.end.line) return first.slice(loc.start.column, loc.end.column);
  return `${first.slice(loc.start.column)}…`;
}

function clip(s: string, max = 60): string {
  // eslint-disable-next-line no-control-regex -- replacing them is the point
  const chars = [...s.replace(/[\u0000-\u001f\u007f]/g, '?')];
  return chars.length > max ? `${chars.slice(0, max).join('')}…` : chars.join('');
}

/** The nearest known name, when it is near enough to be the intended one. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  if (name.length > 64) return undefined;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  // One edit in four letters, at most three: "nmae" → "name", but "n" is nobody's typo of "ne".
  const allowed = name.length < 3 ? 0 : Math.max(1, Math.min(3, Math.floor(name.length / 4)));
  return best !== undefined && bestDistance <= allowed ? best : undefined;
}

/** Edits from a to b, a swap of two neighbours (nmae → name) counting as one. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return Infinity;
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 0; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
