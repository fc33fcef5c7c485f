import { Injectable } from '@nestjs/common';
import * as path from 'node:path';
import type { ErrorDetail } from '../../common/errors';
import { BlenderRepository } from '../../repositories/blender.repository';
import type { LoadedTemplate } from '../../templates/template.types';
import type { ResolvedBlenderScene } from '../../compiler/resolve-blender';
import { blenderQueryArgs } from './blender-args';
import type { BlenderBlock } from './blender.schema';
import { checkBindings, type SceneInventory } from './binding-check';

/** Montage's script that Blender runs beside every scene (bindings, inventory, devices). */
export const SCENE_SCRIPT = path.join(__dirname, 'python', 'montage_scene.py');

/** What this machine's Blender is and which Cycles devices it sees; `devices` is empty when it cannot run. */
export interface BlenderCapabilities {
  version?: string;
  devices: string[];
  error?: string;
}

/**
 * What Blender says about itself and about a template's scene, asked once and remembered:
 * its version and devices (per process), a scene's inventory (per template version).
 */
@Injectable()
export class BlenderScenesService {
  private capabilitiesOnce?: Promise<BlenderCapabilities>;
  private readonly inventories = new Map<string, Promise<{ inventory?: SceneInventory; error?: string }>>();

  constructor(private readonly blender: BlenderRepository) {}

  capabilities(): Promise<BlenderCapabilities> {
    this.capabilitiesOnce ??= this.blender.query(blenderQueryArgs(SCENE_SCRIPT, 'devices'), 'MONTAGE_DEVICES', 30_000).then(({ value, error }) => {
      const v = value as { version?: string; devices?: Record<string, string[]> } | undefined;
      if (!v) return { devices: [], error };
      return { version: v.version, devices: Object.keys(v.devices ?? {}) };
    });
    return this.capabilitiesOnce;
  }

  /** The scene's objects, materials, images…: Blender is asked once per template version. */
  inventory(template: LoadedTemplate): Promise<{ inventory?: SceneInventory; error?: string }> {
    const scene = template.spec.blender!.scene;
    const key = `${template.file}\0${template.version}`;
    let known = this.inventories.get(key);
    if (!known) {
      const file = path.join(template.dir, scene);
      known = this.blender
        .query(blenderQueryArgs(SCENE_SCRIPT, 'inventory', { kind: scene.endsWith('.py') ? 'script' : 'blend', path: file }), 'MONTAGE_INVENTORY', 120_000)
        .then(({ value, error }) => {
          // A failure (Blender busy, killed, missing for a moment) is asked again next time, not remembered.
          if (!value) this.inventories.delete(key);
          return value ? { inventory: value as SceneInventory } : { error };
        });
      this.inventories.set(key, known);
      if (this.inventories.size > 200) this.inventories.delete(this.inventories.keys().next().value!);
    }
    return known;
  }

  /**
   * The same check at request time, where this process has Blender (an API without it leaves
   * the check to the node, whose render then fails with the same 400).
   */
  async checkWhereAvailable(template: LoadedTemplate, resolved: ResolvedBlenderScene): Promise<ErrorDetail[]> {
    const block = template.spec.blender;
    if (!block || (await this.capabilities()).devices.length === 0) return [];
    const { inventory } = await this.inventory(template);
    if (!inventory) return [];
    // The names after params (a binding may name its object with a param): same indexes, same lines.
    const bindings = resolved.bindings.map((b) => (b.type === 'image' ? { ...b, src: '' } : b));
    return checkBindings({ ...block, ...resolved.settings, bindings } as BlenderBlock, inventory, (p) => `${template.file}:${template.lineOf(p)}`);
  }

  /** `templates check` of a Blender movie: its bindings against its scene, as `file:line` errors. */
  async check(template: LoadedTemplate): Promise<ErrorDetail[]> {
    const block = template.spec.blender;
    if (!block) return [];
    const at = (p: Array<string | number>) => `${template.file}:${template.lineOf(p)}`;
    if (!template.files.includes(block.scene)) return [{ field: at(['blender', 'scene']), message: `scene file "${block.scene}" not found in the template folder` }];
    const { inventory, error } = await this.inventory(template);
    if (!inventory) return [{ field: at(['blender', 'scene']), message: `Blender could not read the scene: ${error ?? 'no answer'}` }];
    return checkBindings(block, inventory, at);
  }
}
