import type { ErrorDetail } from './errors';

/** Deeper than this, a request body is refused: no render request needs it, and deep values break recursive code. */
export const MAX_JSON_DEPTH = 32;
/** Longest object key accepted anywhere in a body. */
export const MAX_KEY_LENGTH = 200;

// eslint-disable-next-line no-control-regex -- control characters are what this looks for
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Why an object key may not be stored, or undefined when it may. */
export function keyProblem(key: string): string | undefined {
  if (key.startsWith('$')) return 'keys may not start with "$"';
  if (key.includes('.')) return 'keys may not contain "."';
  if (CONTROL.test(key)) return 'keys may not contain control characters';
  if (key === '__proto__' || key === 'constructor' || key === 'prototype') return `"${key}" is not allowed as a key`;
  if (key.length > MAX_KEY_LENGTH) return `keys are at most ${MAX_KEY_LENGTH} characters`;
  return undefined;
}

function label(path: Array<string | number>): string {
  let text = '';
  for (const part of path) {
    text += typeof part === 'number' ? `[${part}]` : `${text ? '.' : ''}${part.length > 40 ? `${part.slice(0, 40)}…` : part}`;
    if (text.length > 120) return `${text.slice(0, 120)}…`;
  }
  return text || '(body)';
}

/**
 * What a parsed JSON body may not hold before anything of it is used or stored: nesting deeper
 * than `maxDepth`, and keys that document stores refuse or that reach object prototypes
 * (`$…`, `a.b`, `__proto__`, control characters). Iterative, so a body nested thousands of
 * levels deep cannot overflow the stack here; at most `maxProblems` are reported.
 */
export function jsonPolicyProblems(body: unknown, maxDepth = MAX_JSON_DEPTH, maxProblems = 5): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  const stack: Array<{ value: unknown; path: Array<string | number>; depth: number }> = [{ value: body, path: [], depth: 0 }];
  while (stack.length > 0 && problems.length < maxProblems) {
    const { value, path, depth } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (depth >= maxDepth) {
      problems.push({ field: label(path), message: `nested deeper than ${maxDepth} levels` });
      continue;
    }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: [...path, i], depth: depth + 1 });
      continue;
    }
    const keys = Object.keys(value);
    const children: typeof stack = [];
    for (const key of keys) {
      const problem = keyProblem(key);
      if (problem) {
        problems.push({ field: label([...path, key]), message: problem });
        if (problems.length >= maxProblems) break;
        continue;
      }
      children.push({ value: (value as Record<string, unknown>)[key], path: [...path, key], depth: depth + 1 });
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]); // in document order
  }
  return problems;
}

/**
 * The first character of `text` that cannot be shown or stored safely: anything outside
 * XML 1.0's characters (NUL, control characters other than tab and line breaks, unpaired
 * surrogates, U+FFFE/U+FFFF). Pango refuses them in text, and an SVG with one is not XML.
 */
export function unsafeCharacter(text: string): string | undefined {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x9 || c === 0xa || c === 0xd) continue;
    if (c < 0x20 || c === 0xfffe || c === 0xffff) return describeCodeUnit(c);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return describeCodeUnit(c);
    }
    if (c >= 0xdc00 && c <= 0xdfff) return describeCodeUnit(c);
  }
  return undefined;
}

function describeCodeUnit(c: number): string {
  const hex = `U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
  if (c === 0) return `${hex} (NUL)`;
  if (c < 0x20) return `${hex} (a control character)`;
  if (c >= 0xd800 && c <= 0xdfff) return `${hex} (half of a surrogate pair)`;
  return `${hex} (a non-character)`;
}
