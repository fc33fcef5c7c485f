import { MontageError } from '../../src/common/errors';
import type { ResolvedMovie, TimedLayer } from '../../src/compiler/resolve';
import { movieSchema } from '../../src/templates/movie.schema';
import type { LoadedTemplate } from '../../src/templates/template.types';
import { parseSource } from '../../src/templates/yaml-source';

/** A LoadedTemplate built by hand from the YAML lines of `ok/t/movie.yaml` (line 1 is the first element). */
export function templateFrom(lines: string[], extra: Partial<LoadedTemplate> = {}): LoadedTemplate {
  const parsed = parseSource('ok/t/movie.yaml', lines.join('\n') + '\n');
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return {
    project: 'ok',
    movie: 't',
    dir: '/templates/ok/t',
    file: 'ok/t/movie.yaml',
    version: 'v1',
    spec: movieSchema.parse(parsed.doc.data),
    svgSources: {},
    partials: {},
    files: [],
    lineOf: parsed.doc.lineOf,
    ...extra,
  };
}

/** The MontageError that `fn` throws; the test fails when it throws nothing or something else. */
export function failure(fn: () => unknown): MontageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MontageError);
    return err as MontageError;
  }
  throw new Error('expected a MontageError');
}

/** A resolved movie: one scene of 100 frames at 640×360 and 25 fps holding `layers`. */
export function resolvedMovie(layers: TimedLayer[], extra: Partial<ResolvedMovie> = {}): ResolvedMovie {
  return {
    templateId: 'p/m',
    version: 'v',
    width: 640,
    height: 360,
    fps: 25,
    totalFrames: 100,
    background: '#000000',
    posterFrame: 50,
    scenes: [{ index: 0, name: 'one', startFrame: 0, endFrame: 100, background: '#000000', layers }],
    audio: [],
    ...extra,
  };
}
