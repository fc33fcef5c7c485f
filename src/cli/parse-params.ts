import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { badInput } from '../common/errors';
import { MEDIA_TYPES } from '../compiler/params';
import type { Variable } from '../templates/movie.schema';

/**
 * `--param name=value` pairs (the value may contain `=`) merged over a params file.
 * Values stay strings: the movie's variable types decide how they are read.
 */
export function mergeCliParams(pairs: string[], fileParams: unknown): Record<string, unknown> {
  if (fileParams !== undefined && (typeof fileParams !== 'object' || fileParams === null || Array.isArray(fileParams))) {
    throw badInput('the params file must hold a JSON object of variable names to values', [{ field: '--params-file', message: 'not a JSON object' }]);
  }
  const params: Record<string, unknown> = { ...(fileParams as Record<string, unknown> | undefined) };
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw badInput(`--param expects name=value, got "${pair.slice(0, 60)}"`, [{ field: '--param', message: 'expected name=value' }]);
    }
    params[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return params;
}

/** `demo/welcome` → project and movie. */
export function parseMovieId(id: string): { project: string; movie: string } {
  const m = /^([^/]+)\/([^/]+)$/.exec(id);
  if (!m) throw badInput(`expected <project>/<movie>, got "${id.slice(0, 80)}"`, [{ field: 'movie', message: 'expected <project>/<movie>' }]);
  return { project: m[1], movie: m[2] };
}

/**
 * `--param photo=@./pic.jpg`: the value of a media variable given as `@<path>` is a file of the
 * person running the CLI, resolved against `cwd`, passed on as a `file://` URL (which only the
 * CLI's own renders accept). Any other variable keeps its `@` as text (`@handle`).
 */
export function localMediaParams(
  params: Record<string, unknown>,
  variables: Record<string, Variable>,
  cwd: string,
  isFile: (file: string) => boolean,
): Record<string, unknown> {
  const out = { ...params };
  for (const [name, value] of Object.entries(params)) {
    const variable = Object.prototype.hasOwnProperty.call(variables, name) ? variables[name] : undefined;
    if (!variable || !MEDIA_TYPES.has(variable.type) || typeof value !== 'string' || !value.startsWith('@')) continue;
    const file = path.resolve(cwd, value.slice(1));
    if (value.length === 1 || !isFile(file)) {
      throw badInput(`--param ${name}: no file ${file}`, [{ field: `--param ${name}`, message: `no file ${file}` }]);
    }
    out[name] = pathToFileURL(file).href;
  }
  return out;
}
