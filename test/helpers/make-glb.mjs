// Writes a small GLB test model with @gltf-transform/core: `node test/helpers/make-glb.mjs <out.glb> [#rrggbb] [boxes]`.
// A separate process: the library is ESM-only underneath (property-graph), which jest's CommonJS runtime cannot load.
// The model is one box (or `boxes` in a row, each its own mesh), 1.6 × 1 × 1.6, of one colour (default red), double-sided.
import { Document, NodeIO } from '@gltf-transform/core';
import { writeFileSync } from 'node:fs';

const [out, hex = '#cc0d0d', boxes = '1'] = process.argv.slice(2);
if (!out) throw new Error('usage: make-glb.mjs <out.glb> [#rrggbb] [boxes]');
const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
const doc = new Document();
doc.getRoot().getAsset().generator = 'montage-test';
const buffer = doc.createBuffer();
const corners = [-1, -1, -1, 1, -1, -1, 1, 1, -1, -1, 1, -1, -1, -1, 1, 1, -1, 1, 1, 1, 1, -1, 1, 1].map((v, i) => (i % 3 === 1 ? v * 0.5 : v * 0.8));
const triangles = [0, 2, 1, 0, 3, 2, 4, 5, 6, 4, 6, 7, 0, 1, 5, 0, 5, 4, 2, 3, 7, 2, 7, 6, 1, 2, 6, 1, 6, 5, 0, 4, 7, 0, 7, 3];
const position = doc.createAccessor().setType('VEC3').setArray(new Float32Array(corners)).setBuffer(buffer);
const indices = doc.createAccessor().setType('SCALAR').setArray(new Uint16Array(triangles)).setBuffer(buffer);
const material = doc.createMaterial('Box').setBaseColorFactor([...rgb, 1]).setRoughnessFactor(0.6).setDoubleSided(true);
const scene = doc.createScene('Scene');
for (let i = 0; i < Number(boxes); i++) {
  const mesh = doc.createMesh(i === 0 ? 'Box' : `Box${i}`).addPrimitive(doc.createPrimitive().setAttribute('POSITION', position).setIndices(indices).setMaterial(material));
  scene.addChild(doc.createNode(i === 0 ? 'Box' : `Box${i}`).setMesh(mesh).setTranslation([i * 2, 0, 0]));
}
writeFileSync(out, await new NodeIO().writeBinary(doc));
