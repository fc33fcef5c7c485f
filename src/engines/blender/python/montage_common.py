"""What Montage's two Blender scripts share (montage_scene.py for template scenes,
montage_farm.py for farm jobs): the job after `--`, tagged report lines, the render device and
names looked up in the scene. Imported by both, never run: it has no main.
"""
import json
import sys

import bpy


class DeviceError(Exception):
    """This node's Blender cannot render on the device asked for: the node's problem, not the job's."""


def job_from_argv(error):
    """The job JSON, the last argument after `--` that is an object; `error` (the script's own class) when there is none."""
    args = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    for arg in reversed(args):
        if arg.startswith("{"):
            return json.loads(arg)
    raise error("no job JSON after --")


def report(tag, payload):
    print(tag + " " + json.dumps(payload, separators=(",", ":")), flush=True)


def use_device(scene, device):
    """Renders on `device` or fails: Blender would otherwise fall back to the CPU silently."""
    if scene.render.engine != "CYCLES" or device == "CPU":
        if scene.render.engine == "CYCLES":
            scene.cycles.device = "CPU"
        report("MONTAGE_DEVICE", {"type": "CPU", "devices": ["CPU"]})
        return
    prefs = bpy.context.preferences.addons["cycles"].preferences
    try:
        prefs.compute_device_type = device
    except TypeError:
        raise DeviceError(f"this Blender build has no {device} support (a blender.org build has CUDA, OptiX and HIP)")
    prefs.get_devices()
    used = []
    for d in prefs.devices:
        d.use = d.type == device
        if d.use:
            used.append(d.name)
    if not used:
        raise DeviceError(f"no {device} device found by Cycles on this node")
    scene.cycles.device = "GPU"
    report("MONTAGE_DEVICE", {"type": device, "devices": used})


def find(collection, name, what, error):
    """`collection[name]`, or `error` naming what the scene has (the first 20)."""
    item = collection.get(name)
    if item is None:
        known = ", ".join(sorted(i.name for i in collection)[:20])
        raise error(f'{what} "{name}" is not in the scene (it has: {known or "none"})')
    return item


def use_camera_and_layer(scene, objects, camera, layer, error):
    """The camera (an object of `objects` that is a camera) and the one view layer rendered; `error` when they do not fit."""
    if camera:
        found = find(objects, camera, "camera", error)
        if found.type != "CAMERA":
            raise error(f'object "{found.name}" is not a camera')
        scene.camera = found
    if scene.camera is None:
        raise error("the scene has no camera")
    if layer:
        find(scene.view_layers, layer, "view layer", error)
        for view_layer in scene.view_layers:
            view_layer.use = view_layer.name == layer
