// Writes a small GLB with N cube-ish meshes: node farm-glb.mjs <out.glb> [meshes]
// (a process of its own: @gltf-transform/core is ESM underneath, which jest cannot load).
import { Document, NodeIO } from '@gltf-transform/core';
import { writeFile } from 'node:fs/promises';

const [out, count = '1'] = process.argv.slice(2);
const doc = new Document();
doc.getRoot().getAsset().generator = 'montage-test';
const buffer = doc.createBuffer();
const scene = doc.createScene('scene');
for (let i = 0; i < Number(count); i++) {
  const position = doc.createAccessor().setType('VEC3').setBuffer(buffer).setArray(new Float32Array([0, 0, 0, 1, 0, 0, 0, 1, 0]));
  const prim = doc.createPrimitive().setAttribute('POSITION', position);
  const mesh = doc.createMesh(`m${i}`).addPrimitive(prim);
  scene.addChild(doc.createNode(`n${i}`).setMesh(mesh).setTranslation([i * 2, 0, 0]));
}
await writeFile(out, await new NodeIO().writeBinary(doc));
