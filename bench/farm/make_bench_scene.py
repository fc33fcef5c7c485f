"""Writes the farm bench's scene: blender -b --factory-startup --python-exit-code 3 -P make_bench_scene.py -- out.blend WIDTH HEIGHT FRAMES SAMPLES.

A few shaded spheres on a floor, a camera that moves, Cycles on the CPU, no denoising (Debian's
build has none): enough work per frame that chunks and nodes matter, nothing else.
"""
import sys

import bpy

out, width, height, frames, samples = sys.argv[sys.argv.index("--") + 1 :][:5]
scene = bpy.context.scene
for obj in list(bpy.data.objects):
    bpy.data.objects.remove(obj, do_unlink=True)
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = int(samples)
scene.cycles.use_denoising = False
scene.render.resolution_x = int(width)
scene.render.resolution_y = int(height)
scene.render.resolution_percentage = 100
scene.frame_start = 1
scene.frame_end = int(frames)
bpy.ops.mesh.primitive_plane_add(size=20, location=(0, 0, 0))
for i, colour in enumerate([(0.8, 0.1, 0.1, 1), (0.1, 0.6, 0.2, 1), (0.1, 0.2, 0.8, 1), (0.9, 0.8, 0.1, 1)]):
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.8, location=(-3 + 2 * i, 0, 0.8), segments=48, ring_count=24)
    mat = bpy.data.materials.new(f"m{i}")
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = colour
    bsdf.inputs["Roughness"].default_value = 0.3
    bpy.context.object.data.materials.append(mat)
bpy.ops.object.light_add(type="AREA", location=(2, -3, 5))
bpy.context.object.data.energy = 800
bpy.ops.object.camera_add(location=(0, -9, 3.5), rotation=(1.2, 0, 0))
cam = bpy.context.object
scene.camera = cam
cam.keyframe_insert("location", frame=1)
cam.location.x = 2
cam.keyframe_insert("location", frame=int(frames))
bpy.ops.wm.save_as_mainfile(filepath=out, compress=False)
