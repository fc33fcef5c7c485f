import type { ResolvedMovie, TimedLayer } from '../compiler/resolve';

export interface TimelineLayer {
  id: string;
  type: string;
  label: string;
  startFrame: number;
  endFrame: number;
}

export interface TimelineScene {
  index: number;
  name: string;
  startFrame: number;
  endFrame: number;
  layers: TimelineLayer[];
}

/** What the studio's scrubber draws: scenes and layers as frame ranges [start, end). */
export interface Timeline {
  fps: number;
  totalFrames: number;
  posterFrame: number;
  width: number;
  height: number;
  scenes: TimelineScene[];
}

const LABEL_MAX = 40;

export function timelineOf(movie: ResolvedMovie): Timeline {
  const scenes: TimelineScene[] = movie.scenes.map((s) => ({
    index: s.index,
    name: s.name,
    startFrame: s.startFrame,
    endFrame: s.endFrame,
    layers: s.layers.map((l) => ({ id: l.id, type: l.spec.type, label: layerLabel(l), startFrame: l.startFrame, endFrame: l.endFrame })),
  }));
  // A Blender movie has no scenes of layers: its picture is one Blender scene over the whole movie.
  if (movie.engine === 'blender' && scenes.length === 0) {
    scenes.push({ index: 0, name: 'Blender scene', startFrame: 0, endFrame: movie.totalFrames, layers: [] });
  }
  return { fps: movie.fps, totalFrames: movie.totalFrames, posterFrame: movie.posterFrame, width: movie.width, height: movie.height, scenes };
}

/** A short, human label: a text layer's words, a media layer's file name, else its type. */
export function layerLabel(layer: TimedLayer): string {
  const spec = layer.spec as { type: string; text?: unknown; src?: unknown; name?: unknown };
  let label: string = spec.type;
  if (typeof spec.name === 'string' && spec.name) label = spec.name;
  else if (typeof spec.text === 'string' && spec.text.trim()) label = spec.text.trim().replace(/\s+/g, ' ');
  else if (typeof spec.src === 'string' && spec.src) label = `${spec.type}: ${lastSegment(spec.src)}`;
  return [...label].length > LABEL_MAX ? `${[...label].slice(0, LABEL_MAX - 1).join('')}…` : label;
}

function lastSegment(src: string): string {
  const noQuery = src.split(/[?#]/)[0];
  return noQuery.slice(noQuery.lastIndexOf('/') + 1) || noQuery;
}
