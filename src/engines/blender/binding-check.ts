import type { ErrorDetail } from '../../common/errors';
import type { BlenderBlock } from './blender.schema';

/** What a scene has, as the scene script reports it (`MONTAGE_INVENTORY`). */
export interface SceneInventory {
  version: string;
  /** Object name → type (MESH, FONT, CAMERA, LIGHT…). */
  objects: Record<string, string>;
  /** Material name → its nodes → each node's type and enabled input sockets (name → socket type). */
  materials: Record<string, { nodes: Record<string, { type: string; inputs: Record<string, string> }> }>;
  images: string[];
  viewLayers: string[];
  camera: string | null;
}

const TEMPLATED = /\{\{/;
const fixed = (v: unknown): v is string => typeof v === 'string' && !TEMPLATED.test(v);

/**
 * The bindings of a Blender block checked against the scene's inventory (pure): every name
 * that is not templated must exist, with the right type. `at` gives `file:line` of a path.
 */
export function checkBindings(block: BlenderBlock, inventory: SceneInventory, at: (p: Array<string | number>) => string): ErrorDetail[] {
  const errors: ErrorDetail[] = [];
  const list = (names: string[]) => names.slice(0, 12).join(', ') || 'none';
  const object = (name: unknown, p: Array<string | number>, type?: string, what = 'object') => {
    if (!fixed(name)) return;
    const found = inventory.objects[name];
    if (found === undefined) errors.push({ field: at(p), message: `${what} "${name}" is not in the scene (it has: ${list(Object.keys(inventory.objects))})` });
    else if (type && found !== type) errors.push({ field: at(p), message: `object "${name}" is a ${found.toLowerCase()}, not a ${what}` });
  };
  block.bindings.forEach((b, i) => {
    const p = ['blender', 'bindings', i];
    switch (b.type) {
      case 'text':
        object(b.object, [...p, 'object'], 'FONT', 'text object');
        break;
      case 'object':
        object(b.object, [...p, 'object']);
        break;
      case 'property':
        if (b.object !== undefined) object(b.object, [...p, 'object']);
        break;
      case 'image':
        if (fixed(b.image) && !inventory.images.includes(b.image)) errors.push({ field: at([...p, 'image']), message: `image "${b.image}" is not in the scene (it has: ${list(inventory.images)})` });
        break;
      case 'material': {
        if (!fixed(b.material)) break;
        const material = inventory.materials[b.material];
        if (!material) {
          errors.push({ field: at([...p, 'material']), message: `material "${b.material}" is not in the scene (it has: ${list(Object.keys(inventory.materials))})` });
          break;
        }
        const nodeName = b.node ?? Object.keys(material.nodes).find((n) => material.nodes[n].type === 'BSDF_PRINCIPLED');
        if (!fixed(nodeName)) {
          if (b.node === undefined) errors.push({ field: at([...p, 'material']), message: `material "${b.material}" has no Principled BSDF: name the node` });
          break;
        }
        const node = material.nodes[nodeName];
        if (!node) {
          errors.push({ field: at([...p, 'node']), message: `material "${b.material}" has no node "${nodeName}" (it has: ${list(Object.keys(material.nodes))})` });
          break;
        }
        if (!fixed(b.input)) break;
        const socket = node.inputs[b.input];
        if (!socket) errors.push({ field: at([...p, 'input']), message: `node "${nodeName}" of material "${b.material}" has no input "${b.input}" (it has: ${list(Object.keys(node.inputs))})` });
        else if (socket === 'RGBA' && typeof b.value === 'number') errors.push({ field: at([...p, 'value']), message: `input "${b.input}" is a colour: give #rrggbb` });
        else if ((socket === 'VALUE' || socket === 'INT') && fixed(b.value)) errors.push({ field: at([...p, 'value']), message: `input "${b.input}" is a number, not a colour` });
        else if (!['RGBA', 'VALUE', 'INT'].includes(socket)) errors.push({ field: at([...p, 'input']), message: `input "${b.input}" is a ${socket.toLowerCase()}: only colours and numbers are bound` });
        break;
      }
    }
  });
  if (block.camera !== undefined) object(block.camera, ['blender', 'camera'], 'CAMERA', 'camera');
  else if (!inventory.camera) errors.push({ field: at(['blender', 'scene']), message: 'the scene has no camera: add one or name it with `camera`' });
  if (fixed(block.viewLayer) && !inventory.viewLayers.includes(block.viewLayer)) {
    errors.push({ field: at(['blender', 'viewLayer']), message: `view layer "${block.viewLayer}" is not in the scene (it has: ${list(inventory.viewLayers)})` });
  }
  return errors;
}
