import * as path from 'node:path';
import type { ErrorDetail } from '../common/errors';
import { type BlenderBlock, type ResolvedBinding, type ResolvedBlenderBlock, resolvedBlenderBlockSchema } from '../engines/blender/blender.schema';
import { explainIssue } from '../templates/movie.schema';
import type { LoadedTemplate } from '../templates/template.types';
import type { TemplateFunctions } from './handlebars-env';
import type { Params } from './params';
import { applyHandlebars, type MediaRef, mediaRef } from './resolve';

/** An image binding after Handlebars: its source located (a URL to fetch or a file of the template). */
export type ResolvedBlenderBinding = Exclude<ResolvedBinding, { type: 'image' }> | { type: 'image'; image: string; src: MediaRef };

/** A Blender movie with its params applied: the scene file, the settings and the bindings, all final. */
export interface ResolvedBlenderScene {
  /** Absolute path of the template's .blend or .py. */
  scene: { kind: 'blend' | 'script'; path: string };
  settings: Omit<ResolvedBlenderBlock, 'bindings' | 'scene'>;
  bindings: ResolvedBlenderBinding[];
}

/**
 * Handlebars on the block's strings, then a strict check of every value; errors are
 * `file:line` messages added to `errors`. Pure.
 */
export function resolveBlenderScene(template: LoadedTemplate, block: BlenderBlock, hb: TemplateFunctions, params: Params, errors: ErrorDetail[]): ResolvedBlenderScene | undefined {
  const at = (p: Array<string | number>) => `${template.file}:${template.lineOf(p)}`;
  const before = errors.length;
  const rendered = applyHandlebars(block, hb, { ...params }, {}, (p, message) => errors.push({ field: at(['blender', ...p]), message }));
  const checked = resolvedBlenderBlockSchema.safeParse(rendered);
  if (!checked.success) {
    for (const raw of checked.error.issues) {
      const issue = explainIssue(raw);
      const p = ['blender', ...issue.path];
      errors.push({ field: at(p), message: `${p.join('.')}: ${issue.message} (after applying params)` });
    }
    return undefined;
  }
  const { bindings, scene, ...settings } = checked.data;
  if (!template.files.includes(scene)) {
    errors.push({ field: at(['blender', 'scene']), message: `scene file "${scene}" not found in the template folder` });
  }
  const resolved: ResolvedBlenderBinding[] = [];
  bindings.forEach((binding, i) => {
    if (binding.type !== 'image') return void resolved.push(binding);
    const ref = mediaRef(template, binding.src);
    if (typeof ref === 'string') errors.push({ field: at(['blender', 'bindings', i, 'src']), message: ref });
    else resolved.push({ type: 'image', image: binding.image, src: ref });
  });
  if (errors.length > before) return undefined;
  return { scene: { kind: scene.endsWith('.py') ? 'script' : 'blend', path: path.join(template.dir, scene) }, settings, bindings: resolved };
}
