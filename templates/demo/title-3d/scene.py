"""Builds the sample 3D title scene from nothing (run by Blender with --factory-startup).

A title in extruded 3D text ("Title", body set per render), a logo that turns a full circle
over the animation, a three-light rig (key, fill, rim) and a camera. Everything here is
made by this script, so the template ships no binary .blend.
"""
import math

import bpy

scene = bpy.context.scene
# Start from an empty scene: the factory cube, light and camera go.
for obj in list(bpy.data.objects):
    bpy.data.objects.remove(obj, do_unlink=True)

scene.frame_start = 1
scene.frame_end = 48

world = bpy.data.worlds.get("World") or bpy.data.worlds.new("World")
scene.world = world
world.use_nodes = True
world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.02, 0.025, 0.04, 1)
world.node_tree.nodes["Background"].inputs["Strength"].default_value = 1.0


def material(name, color, metallic=0.0, roughness=0.4):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = color
    bsdf.inputs["Metallic"].default_value = metallic
    bsdf.inputs["Roughness"].default_value = roughness
    return mat


# The title: 3D text, centred, slightly extruded and bevelled.
curve = bpy.data.curves.new("Title", type="FONT")
curve.body = "Montage"
curve.align_x = "CENTER"
curve.align_y = "CENTER"
curve.size = 0.9
curve.extrude = 0.08
curve.bevel_depth = 0.015
title = bpy.data.objects.new("Title", curve)
title.location = (0, -0.9, 0)
title.rotation_euler = (math.radians(90), 0, 0)
curve.materials.append(material("TitleMaterial", (1.0, 0.42, 0.0, 1), metallic=0.2, roughness=0.35))
scene.collection.objects.link(title)

# The logo: a torus knot-like ring pair that turns once over frames 1–48.
bpy.ops.mesh.primitive_torus_add(major_radius=0.55, minor_radius=0.16, location=(0, 0, 1.05))
logo = bpy.context.active_object
logo.name = "Logo"
logo.rotation_euler = (math.radians(90), 0, 0)
logo.data.materials.append(material("LogoMaterial", (0.15, 0.55, 1.0, 1), metallic=0.6, roughness=0.25))
bpy.ops.mesh.primitive_uv_sphere_add(radius=0.22, location=(0, 0, 0))
core = bpy.context.active_object
core.name = "LogoCore"
core.parent = logo
core.data.materials.append(material("LogoCoreMaterial", (0.95, 0.95, 0.95, 1), roughness=0.2))
logo.keyframe_insert("rotation_euler", index=2, frame=1)
logo.rotation_euler[2] = math.radians(360)
logo.keyframe_insert("rotation_euler", index=2, frame=49)
for fcurve in logo.animation_data.action.fcurves:
    for point in fcurve.keyframe_points:
        point.interpolation = "LINEAR"

# A floor that catches the light.
bpy.ops.mesh.primitive_plane_add(size=30, location=(0, 0, -1.6))
floor = bpy.context.active_object
floor.name = "Floor"
floor.data.materials.append(material("FloorMaterial", (0.08, 0.08, 0.1, 1), roughness=0.6))


def light(name, kind, energy, location, rotation, color=(1, 1, 1), size=1.0):
    data = bpy.data.lights.new(name, type=kind)
    data.energy = energy
    data.color = color
    if kind == "AREA":
        data.size = size
    obj = bpy.data.objects.new(name, data)
    obj.location = location
    obj.rotation_euler = tuple(math.radians(a) for a in rotation)
    scene.collection.objects.link(obj)
    return obj


# Light rig: a warm key, a cool fill, a rim behind.
light("KeyLight", "AREA", 600, (4, -5, 5), (50, 0, 40), (1.0, 0.93, 0.85), size=3)
light("FillLight", "AREA", 200, (-5, -4, 2), (70, 0, -50), (0.8, 0.88, 1.0), size=4)
light("RimLight", "SPOT", 900, (0, 5, 4), (-50, 0, 180))

cam_data = bpy.data.cameras.new("Camera")
cam_data.lens = 35
camera = bpy.data.objects.new("Camera", cam_data)
camera.location = (0, -8.5, 0.6)
camera.rotation_euler = (math.radians(88), 0, 0)
scene.collection.objects.link(camera)
scene.camera = camera
