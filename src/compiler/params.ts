import type { ErrorDetail } from '../common/errors';
import { unsafeCharacter } from '../common/json-policy';
import { HEX_COLOR, type ListVariable, type ScalarVariable, type Variable } from '../templates/movie.schema';

/** Validated params, ready for Handlebars: strings, numbers, booleans, lists of those or of objects. */
export type ParamValue = string | number | boolean | ParamValue[] | { [field: string]: ParamValue };
export type Params = Record<string, ParamValue>;

export type ParamsResult = { ok: true; params: Params } | { ok: false; errors: ErrorDetail[] };

/** Applies to every string even when the template sets no maxLength: params are hostile. */
export const MAX_STRING_LENGTH = 10_000;
/** A string variable may declare a larger `maxLength` (subtitles, long copy), up to this. */
export const MAX_DECLARED_STRING_LENGTH = 1_000_000;
export const MEDIA_TYPES = new Set(['image', 'video', 'audio']);

/**
 * Checks raw params (from JSON or from `--param name=value`, where everything is a string)
 * against a movie's declared variables. Every problem is reported, each naming its variable.
 */
export interface ValidateOptions {
  /**
   * Media values may name files of the template (`assets/photo.jpg`). Only for values the
   * designer wrote (defaults); a request's params must be URLs.
   */
  allowTemplateFiles?: boolean;
  /**
   * Media values may be `file:///absolute/path` URLs: files of the person running the CLI,
   * which renders in its own process. Never for a request that came over the network.
   */
  allowLocalFiles?: boolean;
}

/** A local file as a media value (CLI only): an absolute `file://` URL. */
export const LOCAL_FILE_URL = /^file:\/\/\//i;

export function validateParams(
  variables: Record<string, Variable>,
  raw: Record<string, unknown>,
  options: ValidateOptions = {},
): ParamsResult {
  const errors: ErrorDetail[] = [];
  const params: Params = {};
  for (const name of Object.keys(raw)) {
    if (!Object.prototype.hasOwnProperty.call(variables, name)) {
      const known = Object.keys(variables);
      errors.push({
        field: name,
        message: `unknown variable "${truncate(name)}"; this movie declares ${known.length ? known.join(', ') : 'no variables'}`,
      });
    }
  }
  for (const [name, variable] of Object.entries(variables)) {
    const given = Object.prototype.hasOwnProperty.call(raw, name) ? raw[name] : undefined;
    if (given === undefined || given === null) {
      if (variable.required) {
        errors.push({ field: name, message: `missing required ${variable.type} variable "${name}"` });
      } else if (variable.default !== undefined) {
        params[name] = variable.default as ParamValue; // defaults come from the designer: trusted, may be template files
      }
      continue;
    }
    const value =
      variable.type === 'list' ? checkList(name, variable, given, errors, options) : checkScalar(name, variable, given, errors, options);
    if (value !== undefined) params[name] = value;
  }
  return errors.length ? { ok: false, errors } : { ok: true, params };
}

function checkList(name: string, variable: ListVariable, given: unknown, errors: ErrorDetail[], options: ValidateOptions): ParamValue | undefined {
  let value = given;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      errors.push({ field: name, message: 'expected a list (a JSON array)' });
      return undefined;
    }
  }
  if (!Array.isArray(value)) {
    errors.push({ field: name, message: 'expected a list (a JSON array)' });
    return undefined;
  }
  if (variable.minItems !== undefined && value.length < variable.minItems) {
    errors.push({ field: name, message: `needs at least ${variable.minItems} items, got ${value.length}` });
  }
  if (variable.maxItems !== undefined && value.length > variable.maxItems) {
    errors.push({ field: name, message: `allows at most ${variable.maxItems} items, got ${value.length}` });
    return undefined;
  }
  const before = errors.length;
  const items = value.map((item, i): ParamValue | undefined => {
    const path = `${name}[${i}]`;
    if (variable.of) return checkScalar(path, variable.of, item, errors, options);
    if (!variable.fields) return checkAny(path, item, errors);
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      errors.push({ field: path, message: `expected an object with fields ${Object.keys(variable.fields).join(', ')}` });
      return undefined;
    }
    const checked = validateParams(variable.fields, item as Record<string, unknown>, options);
    if (!checked.ok) {
      errors.push(...checked.errors.map((e) => ({ field: `${path}.${e.field}`, message: e.message })));
      return undefined;
    }
    return checked.params;
  });
  return errors.length > before ? undefined : (items as ParamValue[]);
}

function checkAny(path: string, item: unknown, errors: ErrorDetail[]): ParamValue | undefined {
  if (typeof item === 'string' && [...item].length > MAX_STRING_LENGTH) {
    errors.push({ field: path, message: `is too long; the limit is ${MAX_STRING_LENGTH} characters` });
    return undefined;
  }
  const unsafe = typeof item === 'string' ? unsafeCharacter(item) : undefined;
  if (unsafe) {
    errors.push({ field: path, message: `contains ${unsafe}, which text cannot hold` });
    return undefined;
  }
  if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean') return item;
  errors.push({ field: path, message: 'expected a string, number or boolean' });
  return undefined;
}

function checkScalar(
  name: string,
  variable: ScalarVariable,
  given: unknown,
  errors: ErrorDetail[],
  options: ValidateOptions,
): ParamValue | undefined {
  const fail = (message: string) => {
    errors.push({ field: name, message });
    return undefined;
  };
  switch (variable.type) {
    case 'number': {
      const n = typeof given === 'number' ? given : typeof given === 'string' && given.trim() !== '' ? Number(given) : NaN;
      if (!Number.isFinite(n)) return fail(`expected a number, got ${describe(given)}`);
      if (variable.integer && !Number.isInteger(n)) return fail(`expected a whole number, got ${n}`);
      if (variable.min !== undefined && n < variable.min) return fail(`must be ≥ ${variable.min}, got ${n}`);
      if (variable.max !== undefined && n > variable.max) return fail(`must be ≤ ${variable.max}, got ${n}`);
      return n;
    }
    case 'boolean': {
      if (typeof given === 'boolean') return given;
      if (given === 'true' || given === '1') return true;
      if (given === 'false' || given === '0') return false;
      return fail(`expected true or false, got ${describe(given)}`);
    }
    case 'enum': {
      const allowed = variable.values ?? [];
      const match = allowed.find((v) => String(v) === String(given));
      if (match === undefined || (typeof given !== 'string' && typeof given !== 'number')) {
        return fail(`must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}, got ${describe(given)}`);
      }
      return match;
    }
    default: {
      if (typeof given !== 'string' && typeof given !== 'number') return fail(`expected a ${variable.type} string, got ${describe(given)}`);
      const s = String(given);
      const length = [...s].length; // code points: an emoji is one character to the person typing it
      // 10 000 characters unless the variable declares more (an SRT of a long video), never past 1 000 000.
      const limit = variable.type === 'string' && variable.maxLength !== undefined ? Math.min(MAX_DECLARED_STRING_LENGTH, Math.max(MAX_STRING_LENGTH, variable.maxLength)) : MAX_STRING_LENGTH;
      if (length > limit) return fail(`is ${length} characters long; the limit is ${limit}`);
      // Pango refuses a NUL, and an SVG with a control character is not XML: refused here, named.
      const unsafe = unsafeCharacter(s);
      if (unsafe) return fail(`contains ${unsafe}, which text cannot hold`);
      if (variable.type === 'color') {
        return HEX_COLOR.test(s) ? s : fail(`expected a colour like #ff8800 or #ff880080, got ${describe(s)}`);
      }
      if (MEDIA_TYPES.has(variable.type)) {
        if (/^https?:\/\//i.test(s)) return s;
        if (options.allowLocalFiles && LOCAL_FILE_URL.test(s)) return s;
        if (options.allowTemplateFiles && !/^[a-z][a-z0-9+.-]*:/i.test(s)) return s; // checked against the folder on resolve
        return fail(`expected an http(s) URL of ${variable.type === 'image' ? 'an' : 'a'} ${variable.type}, got ${describe(s)}`);
      }
      if (variable.minLength !== undefined && length < variable.minLength) {
        return fail(`must be at least ${variable.minLength} characters, got ${length}`);
      }
      if (variable.maxLength !== undefined && length > variable.maxLength) {
        return fail(`must be at most ${variable.maxLength} characters, got ${length}`);
      }
      if (variable.pattern !== undefined) {
        const pattern = compilePattern(variable.pattern);
        if (!pattern) return fail(`the template's pattern for this variable is not a valid regular expression`);
        if (!pattern.test(s)) return fail(`does not match the pattern ${variable.pattern}`);
      }
      return s;
    }
  }
}

/** A designer's pattern, anchored to the whole value; undefined when it does not compile. */
export function compilePattern(pattern: string): RegExp | undefined {
  try {
    return new RegExp(`^(?:${pattern})$`, 'u');
  } catch {
    return undefined;
  }
}

function truncate(s: string, n = 60): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(truncate(v));
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : String(v);
}
