import type { FontNames } from './font-names';
import type { MovieFile } from './movie.schema';

/** A movie template loaded from disk and checked at template level (Handlebars not yet applied). */
export interface LoadedTemplate {
  project: string;
  movie: string;
  /** Absolute path of the movie folder. */
  dir: string;
  /** Movie file name inside `dir` (movie.yaml, movie.yml or movie.json). */
  file: string;
  /** Content hash of every file in the movie folder and the project's shared partials. */
  version: string;
  spec: MovieFile;
  /** `.svg.hbs` sources keyed by their path relative to `dir`. */
  svgSources: Record<string, string>;
  /** Partials (`partials/*.hbs` of the movie and `_partials/*.hbs` of the project) by name. */
  partials: Record<string, string>;
  /** Every file in the movie folder, relative to `dir` with forward slashes. */
  files: string[];
  /** The `.ttf`/`.otf`/`.ttc` files of the folder, with the families each declares (read at load). */
  fonts?: Record<string, FontNames>;
  /** Font families installed where the template was loaded (lower case), for families filled in by params. */
  installedFamilies?: ReadonlySet<string>;
  /** Line of a value in the movie file, for error messages. */
  lineOf(path: ReadonlyArray<string | number>): number;
}

/** A movie's length in seconds with default params (transitions not subtracted; a list variable can make it longer). */
export function declaredDurationSec(spec: MovieFile): number {
  return spec.duration ?? spec.scenes.reduce((s, sc) => s + (typeof sc.duration === 'number' ? sc.duration : 0), 0);
}
