import { POP_IN } from './render-plan';
import type { ResolvedScene } from './resolve';
import { splitOptions, textUnits } from './text-layout';

/**
 * Frames [from, to) of the movie where something is still on its way in or out: a layer's `in`
 * and `out` animations (a split text's last unit included), opacity and scale keyframes, and
 * scene transitions. A poster taken there shows a half-faded title or nothing at all.
 */
export function busySpans(scenes: readonly ResolvedScene[], fps: number): Array<{ from: number; to: number }> {
  const spans: Array<{ from: number; to: number }> = [];
  const frames = (sec: number) => Math.ceil(sec * fps);
  for (const scene of scenes) {
    if (scene.transition) spans.push({ from: scene.startFrame, to: scene.startFrame + scene.transition.frames });
    for (const layer of scene.layers) {
      const spec = layer.spec;
      const list = (a: unknown) => (a === undefined ? [] : Array.isArray(a) ? a : [a]) as Array<{ duration: number }>;
      let inSec = Math.max(0, ...list(spec.in).map((a) => a.duration));
      const outSec = Math.max(0, ...list(spec.out).map((a) => a.duration));
      if (spec.type === 'text' && spec.split) {
        const { by, stagger, preset } = splitOptions(spec.split);
        if (preset === 'pop' && !spec.in) inSec = POP_IN.duration; // pop's own entrance
        inSec += Math.max(0, textUnits(spec.text, by).length - 1) * stagger;
      }
      if (inSec > 0) spans.push({ from: layer.startFrame, to: Math.min(layer.endFrame, layer.startFrame + frames(inSec)) });
      if (outSec > 0) spans.push({ from: Math.max(layer.startFrame, layer.endFrame - frames(outSec)), to: layer.endFrame });
      const keyframes = 'keyframes' in spec ? spec.keyframes : undefined;
      for (const track of [keyframes?.opacity, keyframes?.scale]) {
        if (!track || track.length < 2) continue;
        spans.push({ from: layer.startFrame + Math.floor(track[0].at * fps), to: layer.startFrame + frames(track[track.length - 1].at) });
      }
    }
  }
  return spans;
}

/**
 * The default poster: the frame nearest the middle of the movie where nothing is animating in
 * or out (the middle itself when every frame is busy).
 */
export function defaultPosterFrame(scenes: readonly ResolvedScene[], totalFrames: number, fps: number): number {
  const middle = Math.floor(totalFrames / 2);
  // How many spans cover each frame, by a running sum of their starts and ends: linear in frames + spans.
  const delta = new Int32Array(totalFrames + 1);
  for (const s of busySpans(scenes, fps)) {
    const from = Math.max(0, Math.min(totalFrames, s.from));
    const to = Math.max(from, Math.min(totalFrames, s.to));
    delta[from]++;
    delta[to]--;
  }
  const busy = new Uint8Array(totalFrames);
  for (let f = 0, covered = 0; f < totalFrames; f++) busy[f] = (covered += delta[f]) > 0 ? 1 : 0;
  for (let d = 0; d <= totalFrames; d++) {
    for (const f of [middle + d, middle - d]) if (f >= 0 && f < totalFrames && !busy[f]) return f;
  }
  return middle;
}
