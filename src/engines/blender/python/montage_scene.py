"""Montage's side of a Blender render: applies a render job's settings and bindings to the
loaded scene. Run by Blender with `-P` after the scene is loaded (or built); the job comes as
JSON, the last argument after `--`. Bindings are data: names of the scene's objects,
materials and images, and values. Nothing in the job is ever run as code.

Any binding that does not fit the scene is reported on one `MONTAGE_ERROR {json}` line per
problem, and the script raises: with `--python-exit-code` Blender then exits with that code
instead of rendering a scene that is not what was asked for.

With mode "serve", the scene stays loaded: chunks come on stdin, one JSON line each
(`{"start": a, "end": b, "dir": "/frames"}`), each frame is rendered and saved as
`<dir>/f_#####.png` (Blender prints `Saved: '…'` as with -a) and `MONTAGE_CHUNK {"done": true}`
ends the chunk; the process leaves when stdin closes. A node keeps it for the next chunk of
the same scene instead of starting Blender again.

The same file answers two other questions, chosen by the job's "mode":
- "inventory": prints `MONTAGE_INVENTORY {json}` (objects, materials and their node inputs,
  images, cameras, view layers) for `templates check`, and renders nothing;
- "devices": prints `MONTAGE_DEVICES {json}` (Blender's version, Cycles devices by type).
"""
import json
import math
import os
import sys

import bpy

# The shared helpers sit beside this script (Blender does not put a -P script's folder on sys.path).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from montage_common import DeviceError, report, use_device  # noqa: E402
import montage_common  # noqa: E402


def job_from_argv():
    return montage_common.job_from_argv(BindingError)


def find(collection, name, what):
    return montage_common.find(collection, name, what, BindingError)


class BindingError(Exception):
    pass


def srgb_to_linear(c):
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def hex_rgba(value):
    h = value.lstrip("#")
    rgb = [srgb_to_linear(int(h[i : i + 2], 16) / 255) for i in (0, 2, 4)]
    alpha = int(h[6:8], 16) / 255 if len(h) == 8 else 1.0
    return rgb + [alpha]


def cycles_devices():
    """Cycles devices by type, as this Blender build sees them (no GPU build: only CPU)."""
    found = {"CPU": ["CPU"]}
    addon = bpy.context.preferences.addons.get("cycles")
    if addon is None:
        return found
    prefs = addon.preferences
    for kind in ("CUDA", "OPTIX", "HIP", "ONEAPI", "METAL"):
        try:
            prefs.compute_device_type = kind
        except TypeError:
            continue  # not compiled into this build
        try:
            prefs.get_devices()
        except Exception:  # noqa: BLE001 - a driver that fails to answer is no device
            continue
        names = [d.name for d in prefs.devices if d.type == kind]
        if names:
            found[kind] = names
    return found


def principled(material):
    if not material.use_nodes or material.node_tree is None:
        raise BindingError(f'material "{material.name}" does not use nodes')
    for node in material.node_tree.nodes:
        if node.type == "BSDF_PRINCIPLED":
            return node
    raise BindingError(f'material "{material.name}" has no Principled BSDF: name the node')


def apply_binding(scene, b):
    kind = b["type"]
    if kind == "text":
        obj = find(bpy.data.objects, b["object"], "object")
        if obj.type != "FONT":
            raise BindingError(f'object "{obj.name}" is a {obj.type.lower()}, not a text object')
        obj.data.body = b["body"]
    elif kind == "material":
        mat = find(bpy.data.materials, b["material"], "material")
        node = find(mat.node_tree.nodes, b["node"], f'node of material "{mat.name}"') if b.get("node") else principled(mat)
        socket = node.inputs.get(b["input"])
        if socket is None:
            names = ", ".join(i.name for i in node.inputs if i.enabled)
            raise BindingError(f'node "{node.name}" of material "{mat.name}" has no input "{b["input"]}" (it has: {names})')
        value = b["value"]
        if socket.type == "RGBA":
            if not isinstance(value, str):
                raise BindingError(f'input "{socket.name}" of material "{mat.name}" is a colour: give #rrggbb')
            socket.default_value = hex_rgba(value)
        elif socket.type in ("VALUE", "INT"):
            if isinstance(value, str):
                raise BindingError(f'input "{socket.name}" of material "{mat.name}" is a number, not a colour')
            socket.default_value = value
        else:
            raise BindingError(f'input "{socket.name}" of material "{mat.name}" is a {socket.type.lower()}: only colours and numbers are bound')
    elif kind == "image":
        image = find(bpy.data.images, b["image"], "image")
        image.source = "FILE"
        image.filepath = b["path"]
        image.reload()
        if not image.has_data and image.size[0] == 0:
            raise BindingError(f'image "{image.name}" could not be loaded from its source')
    elif kind == "object":
        obj = find(bpy.data.objects, b["object"], "object")
        if "visible" in b:
            obj.hide_render = not b["visible"]
            obj.hide_viewport = not b["visible"]
        if "location" in b:
            obj.location = b["location"]
        if "rotation" in b:
            obj.rotation_mode = "XYZ"
            obj.rotation_euler = [math.radians(a) for a in b["rotation"]]
        if "scale" in b:
            s = b["scale"]
            obj.scale = s if isinstance(s, list) else [s, s, s]
    elif kind == "property":
        holder = find(bpy.data.objects, b["object"], "object") if b.get("object") else scene
        name = b["name"]
        existing = holder.get(name)
        # Only the designer's own values: never a group of add-on settings (scene["cycles"]) or Blender's own property.
        if name.startswith("_") or name in holder.bl_rna.properties.keys() or (existing is not None and not isinstance(existing, (int, float, str, bool))):
            raise BindingError(f'"{name}" is not a custom property that a binding may set')
        holder[name] = b["value"]
    else:
        raise BindingError(f'unknown binding type "{kind}"')


def apply_settings(scene, s):
    montage_common.use_camera_and_layer(scene, bpy.data.objects, s.get("camera"), s.get("viewLayer"), BindingError)
    render = scene.render
    render.engine = s["engine"]
    render.resolution_x = s["width"]
    render.resolution_y = s["height"]
    render.resolution_percentage = 100
    render.pixel_aspect_x = render.pixel_aspect_y = 1
    render.fps = s["fps"]
    render.fps_base = 1
    render.film_transparent = bool(s["transparent"])
    render.use_file_extension = True
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGBA" if s["transparent"] else "RGB"
    render.image_settings.color_depth = "8"
    render.image_settings.compression = 15  # frames are read once by the encoder: write fast
    render.use_overwrite = True
    render.use_placeholder = False
    # One whole frame per movie frame, whatever the .blend says: no step, no border crop, no stereo views.
    scene.frame_step = 1
    render.use_border = False
    render.use_crop_to_border = False
    render.use_multiview = False
    if s["engine"] == "CYCLES":
        scene.cycles.samples = s["samples"]
        scene.cycles.use_adaptive_sampling = False  # the same frame renders the same on every node
        scene.cycles.seed = 0
        scene.cycles.use_denoising = bool(s["denoise"])
        try:
            scene.cycles.use_animated_seed = False
        except AttributeError:
            pass
    else:
        scene.eevee.taa_render_samples = s["samples"]
    use_device(scene, s["device"])


def inventory():
    def inputs(node):
        return {i.name: i.type for i in node.inputs if i.enabled}

    materials = {}
    for mat in bpy.data.materials:
        nodes = {}
        if mat.use_nodes and mat.node_tree:
            for node in mat.node_tree.nodes:
                nodes[node.name] = {"type": node.type, "inputs": inputs(node)}
        materials[mat.name] = {"nodes": nodes}
    scene = bpy.context.scene
    return {
        "version": bpy.app.version_string,
        "objects": {o.name: o.type for o in bpy.data.objects},
        "materials": materials,
        "images": sorted(i.name for i in bpy.data.images),
        "viewLayers": [v.name for v in scene.view_layers],
        "camera": scene.camera.name if scene.camera else None,
        "frameStart": scene.frame_start,
        "frameEnd": scene.frame_end,
    }


def main():
    job = job_from_argv()
    mode = job.get("mode", "render")
    if mode == "devices":
        report("MONTAGE_DEVICES", {"version": bpy.app.version_string, "devices": cycles_devices()})
        return
    if mode == "inventory":
        report("MONTAGE_INVENTORY", inventory())
        return
    scene = bpy.context.scene
    problems = []
    for i, binding in enumerate(job.get("bindings", [])):
        try:
            apply_binding(scene, binding)
        except BindingError as err:
            problems.append({"binding": i, "message": str(err)})
        except (TypeError, ValueError, AttributeError, KeyError, RuntimeError) as err:
            # Blender refusing a value (a float for a whole-number input, a linked datablock): the binding's fault.
            problems.append({"binding": i, "message": f"Blender refused it: {err}"})
    try:
        apply_settings(scene, job["settings"])
    except BindingError as err:
        problems.append({"setting": True, "message": str(err)})
    except DeviceError as err:
        report("MONTAGE_DEVICE_ERROR", {"message": str(err)})
        raise SystemExit(3)
    for problem in problems:
        report("MONTAGE_ERROR", problem)
    if problems:
        raise SystemExit(3)
    if mode == "serve":
        serve(scene)


def serve(scene):
    """Renders chunks read from stdin, one JSON line each, until stdin closes."""
    for line in sys.stdin:
        if not line.strip():
            continue
        chunk = json.loads(line)
        for frame in range(int(chunk["start"]), int(chunk["end"]) + 1):
            scene.frame_set(frame)
            scene.render.filepath = os.path.join(chunk["dir"], "f_%05d" % frame)
            bpy.ops.render.render(write_still=True)
        report("MONTAGE_CHUNK", {"done": True})


main()
