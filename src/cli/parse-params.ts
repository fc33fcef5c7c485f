import { badInput } from '../common/errors';

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
