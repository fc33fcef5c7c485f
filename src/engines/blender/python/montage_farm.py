"""Montage's side of a render-farm job (issue 14): a project's own .blend, or a 3D product.
Run by Blender with `-P` after the file is loaded (`-Y`: scripts stored in the .blend stay
off); the job is JSON, the last argument after `--`. Nothing in the job is ever run as code.

Modes (the job's "mode"):
- "inspect": prints `MONTAGE_FARM_INVENTORY {json}` (cameras, view layers, frames, external
  files) and renders nothing.
- "render": refuses any external file that resolves outside the job's folder (a hostile
  .blend must not read other files of the node) and OSL script nodes where OSL is on, mutes
  compositor File Output nodes (they write anywhere), then applies the job's camera, view layer,
  resolution percent, samples and device. Blender renders the frames given by `-f` after it.
- "product": builds a scene from nothing around a glTF/GLB model: an automatic camera that
  frames it, a neutral light rig, one camera pose per frame (stills: one view each; turntable:
  a full orbit). Blender renders the frames given by `-f` after it.

A problem is one `MONTAGE_ERROR {json}` line, and the script raises: with
`--python-exit-code` Blender then exits with that code instead of rendering.
"""
import json
import math
import os
import struct
import sys
from urllib.parse import unquote

import bpy

# The shared helpers sit beside this script (Blender does not put a -P script's folder on sys.path).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from montage_common import DeviceError, report, use_device  # noqa: E402
import montage_common  # noqa: E402


def job_from_argv():
    return montage_common.job_from_argv(FarmError)


def find(collection, name, what):
    return montage_common.find(collection, name, what, FarmError)

PRODUCT_VIEWS = {
    # (azimuth from the front, clockwise seen from above; elevation) in degrees.
    "front": (0, 20),
    "front-right": (45, 20),
    "right": (90, 20),
    "back": (180, 20),
    "left": (270, 20),
    "top": (0, 89),
}
VIEW_ORDER = ["front", "front-right", "right", "back", "left", "top"]
# Lists in an inventory are capped: a hostile file may name thousands of things.
MAX_LIST = 1000


class FarmError(Exception):
    pass


def same_file(a, b):
    return os.path.realpath(a) == os.path.realpath(b)


def is_inside(path, folder):
    real = os.path.realpath(path)
    root = os.path.realpath(folder)
    return real == root or real.startswith(root + os.sep)


# --- external files -----------------------------------------------------------------------


def node_trees():
    """(owner, tree) of every node tree: materials, worlds, lights, textures, line styles, compositors, groups."""
    for collection in (bpy.data.materials, bpy.data.worlds, bpy.data.lights, bpy.data.textures, bpy.data.linestyles, bpy.data.scenes):
        for idblock in collection:
            if idblock.node_tree is not None:
                yield idblock, idblock.node_tree
    for group in bpy.data.node_groups:
        yield group, group


def point_caches():
    """(what, owner, cache) of every point cache: particles, cloth, soft body, dynamic paint, rigid body."""
    for obj in bpy.data.objects:
        for psys in obj.particle_systems:
            yield "particle cache", obj, psys.point_cache
        for mod in obj.modifiers:
            if mod.type in ("CLOTH", "SOFT_BODY") and mod.point_cache is not None:
                yield f"{mod.type.lower().replace('_', ' ')} cache", obj, mod.point_cache
            elif mod.type == "DYNAMIC_PAINT" and mod.canvas_settings is not None:
                for surface in mod.canvas_settings.canvas_surfaces:
                    yield "dynamic paint cache", obj, surface.point_cache
    for scene in bpy.data.scenes:
        world = scene.rigidbody_world
        if world is not None and world.point_cache is not None:
            yield "rigid body cache", scene, world.point_cache


def external_files():
    """(what, name, path as written, library) of every file the scene may read or write outside the .blend."""
    found = []

    def add(what, idblock, path):
        if path:
            found.append((what, idblock.name, path, getattr(idblock, "library", None)))

    for image in bpy.data.images:
        if image.source in ("FILE", "SEQUENCE", "MOVIE", "TILED") and image.packed_file is None:
            add("image", image, image.filepath)
    for lib in bpy.data.libraries:
        if lib.packed_file is None:
            add("library", lib, lib.filepath)
    for sound in bpy.data.sounds:
        if sound.packed_file is None:
            add("sound", sound, sound.filepath)
    for clip in bpy.data.movieclips:
        add("movie clip", clip, clip.filepath)
    for cache in bpy.data.cache_files:
        add("cache file", cache, cache.filepath)
    for volume in getattr(bpy.data, "volumes", []):
        if volume.packed_file is None:
            add("volume", volume, volume.filepath)
    for font in bpy.data.fonts:
        if font.filepath != "<builtin>" and font.packed_file is None:
            add("font", font, font.filepath)
    for text in bpy.data.texts:
        if not text.is_in_memory:
            add("text", text, text.filepath)
    for owner, tree in node_trees():
        for node in tree.nodes:
            # IES light profiles and OSL scripts may name a file of their own (mode EXTERNAL).
            if node.bl_idname in ("ShaderNodeTexIES", "ShaderNodeScript") and getattr(node, "mode", "") == "EXTERNAL":
                add("IES profile" if node.bl_idname == "ShaderNodeTexIES" else "OSL script", owner, node.filepath)
    for what, owner, cache in point_caches():
        # An external cache reads any folder; a disk cache's name becomes part of its files' paths.
        if cache.use_external:
            add(what, owner, cache.filepath or "(no folder)")
        elif cache.use_disk_cache and ("/" in cache.name or "\\" in cache.name or ".." in cache.name):
            add(what, owner, cache.name)
    for scene in bpy.data.scenes:
        editor = scene.sequence_editor
        if editor is None:
            continue
        for strip in editor.sequences_all:
            if strip.type == "MOVIE":
                add("movie strip", strip, strip.filepath)
            elif strip.type == "IMAGE":
                # Each image is the strip's folder joined with its own name, which may climb out of it.
                add("image strip", strip, strip.directory)
                for element in list(strip.elements)[:MAX_LIST]:
                    add("image strip", strip, os.path.join(strip.directory, element.filename))
    for obj in bpy.data.objects:
        for mod in obj.modifiers:
            # Simulation caches read from a folder of their own.
            if mod.type == "FLUID" and mod.domain_settings is not None:
                add("fluid cache", obj, mod.domain_settings.cache_directory)
            elif mod.type == "OCEAN" and getattr(mod, "is_cached", False):
                add("ocean cache", obj, mod.filepath)
            elif mod.type == "MESH_CACHE":
                add("mesh cache", obj, mod.filepath)
            elif mod.type == "DYNAMIC_PAINT" and mod.canvas_settings is not None:
                for surface in mod.canvas_settings.canvas_surfaces:
                    if surface.surface_format == "IMAGE":
                        add("dynamic paint output", obj, surface.image_output_path)
    return found


def osl_scripts():
    """OSL script nodes (inline or not) in a file where a scene shades with OSL: OSL code may read any file (texture("/…"))."""
    if not any(getattr(getattr(s, "cycles", None), "shading_system", False) for s in bpy.data.scenes):
        return []
    return [f'"{owner.name}" / "{node.name}"' for owner, tree in node_trees() for node in tree.nodes if node.bl_idname == "ShaderNodeScript"]


def mute_file_outputs():
    """Compositor File Output nodes write to a folder of their own (any absolute path) on every frame: muted, and said."""
    muted = []
    for owner, tree in node_trees():
        for node in tree.nodes:
            if node.bl_idname == "CompositorNodeOutputFile" and not node.mute:
                node.mute = True
                muted.append(f'"{owner.name}" / "{node.name}"')
    if muted:
        report("MONTAGE_NOTE", {"message": "compositor File Output nodes are muted on the farm (only the rendered frames are kept): " + ", ".join(muted[:20])})


def refuse_outside(folder):
    """Every external file must resolve inside the job's folder (symlinks followed)."""
    problems = []
    for what, name, written, library in external_files():
        try:
            absolute = bpy.path.abspath(written, library=library)
        except Exception:  # noqa: BLE001 - a path Blender cannot resolve is not one we read
            absolute = written
        if not is_inside(absolute, folder):
            problems.append(f'{what} "{name}" reads {written}, outside the job\'s folder: upload it with the scene and use a relative path (//…)')
    for where in osl_scripts()[:20]:
        problems.append(f"OSL script node {where} is not rendered on the farm (OSL code may read any file): turn Open Shading Language off or remove the node")
    if problems:
        for message in problems[:20]:
            report("MONTAGE_ERROR", {"setting": True, "message": message})
        raise SystemExit(3)


# --- modes ----------------------------------------------------------------------------------


def check_loaded(job, tag="MONTAGE_ERROR"):
    # Blender quits when it cannot open the file; should it carry on with its default scene, it is not the file.
    if not bpy.data.filepath or not same_file(bpy.data.filepath, job["file"]):
        if tag == "MONTAGE_ERROR":
            report(tag, {"setting": True, "message": "the file is not a readable .blend"})
        else:
            report(tag, {"unreadable": "the file is not a readable .blend"})
        raise SystemExit(3)


def inspect(job):
    check_loaded(job, "MONTAGE_FARM_INVENTORY")
    scene = bpy.context.scene
    render = scene.render
    folder = job.get("folder") or os.path.dirname(job["file"])

    def local(idblock):
        # Data linked from a library outside the folder was read at load (before any script runs): its names stay unsaid.
        lib = idblock.library
        return lib is None or is_inside(bpy.path.abspath(lib.filepath, library=lib.library), folder)

    cameras = [o.name for o in scene.objects if o.type == "CAMERA" and local(o)]
    files = sorted({path for _, _, path, _ in external_files()})
    version = bpy.data.version
    report(
        "MONTAGE_FARM_INVENTORY",
        {
            "scene": scene.name,
            "cameras": sorted(cameras)[:MAX_LIST],
            **({"camera": scene.camera.name} if scene.camera and local(scene.camera) else {}),
            "viewLayers": [v.name for v in scene.view_layers][:MAX_LIST],
            "frameStart": scene.frame_start,
            "frameEnd": scene.frame_end,
            "frameStep": scene.frame_step,
            "fps": round(render.fps / (render.fps_base or 1), 3),
            "width": render.resolution_x,
            "height": render.resolution_y,
            "resolutionPercent": render.resolution_percentage,
            "engine": render.engine,
            "externalFiles": files[:MAX_LIST],
            "savedWith": ".".join(str(n) for n in version),
        },
    )


def render_scene(job):
    check_loaded(job)
    refuse_outside(job["folder"])
    mute_file_outputs()
    scene = bpy.context.scene
    try:
        montage_common.use_camera_and_layer(scene, scene.objects, job.get("camera"), job.get("renderLayer"), FarmError)
    except FarmError as err:
        report("MONTAGE_ERROR", {"setting": True, "message": str(err)})
        raise SystemExit(3)
    render = scene.render
    render.resolution_percentage = int(job["resolutionPercent"])
    render.use_file_extension = True
    render.use_overwrite = True
    render.use_placeholder = False
    # One file per frame: stereo views would save two.
    render.use_multiview = False
    if render.engine == "CYCLES":
        if job.get("samples"):
            scene.cycles.samples = int(job["samples"])
        scene.cycles.use_denoising = False  # Debian's Blender has no OpenImageDenoise
    elif render.engine in ("BLENDER_EEVEE", "BLENDER_EEVEE_NEXT") and job.get("samples"):
        scene.eevee.taa_render_samples = int(job["samples"])
    use_device(scene, job["device"])


def model_uris(path):
    """The URIs a glTF/GLB names (buffers, images): its JSON read here, before the importer."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] == b"glTF":
        if len(data) < 20:
            raise FarmError("the model is not a readable GLB")
        length, kind = struct.unpack_from("<I4s", data, 12)
        if kind != b"JSON":
            raise FarmError("the model is not a readable GLB")
        gltf = json.loads(data[20 : 20 + length].decode("utf-8"))
    else:
        gltf = json.loads(data.decode("utf-8"))
    return [item.get("uri") for key in ("buffers", "images") for item in gltf.get(key, []) if isinstance(item, dict) and isinstance(item.get("uri"), str)]


def refuse_model_outside(model, folder):
    for uri in model_uris(model):
        if uri.startswith("data:"):
            continue
        if ":" in uri.split("/")[0] or uri.startswith("/"):
            raise FarmError(f"the model names {uri[:200]}: only files beside it (relative URIs) or embedded data are read")
        if not is_inside(os.path.join(os.path.dirname(model), unquote(uri)), folder):
            raise FarmError(f"the model names {uri[:200]}, outside its folder")


def numpy_shim():
    # Debian's Blender 3.4 glTF importer uses numpy.bool, gone from numpy 1.24 to 1.26.
    import numpy

    if not hasattr(numpy, "bool"):
        numpy.bool = bool


def look_at(obj, target):
    direction = target - obj.location
    obj.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()


def product(job):
    from mathutils import Vector

    shot = job["shot"]
    folder = job["folder"]
    model = job["model"]
    try:
        refuse_model_outside(model, folder)
    except FarmError as err:
        report("MONTAGE_ERROR", {"setting": True, "message": str(err)})
        raise SystemExit(3)
    except (ValueError, UnicodeDecodeError, struct.error):
        report("MONTAGE_ERROR", {"setting": True, "message": "the model is not readable glTF/GLB"})
        raise SystemExit(3)
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj, do_unlink=True)
    numpy_shim()
    try:
        bpy.ops.import_scene.gltf(filepath=model)
    except Exception as err:  # noqa: BLE001 - the importer's own words, shortened
        report("MONTAGE_ERROR", {"setting": True, "message": f"the model could not be imported: {str(err).strip().splitlines()[-1][:300] if str(err).strip() else 'unknown error'}"})
        raise SystemExit(3)
    refuse_outside(folder)
    scene = bpy.context.scene
    bpy.context.view_layer.update()
    meshes = [o for o in scene.objects if o.type == "MESH"]
    if not meshes:
        report("MONTAGE_ERROR", {"setting": True, "message": "the model has no meshes"})
        raise SystemExit(3)
    corners = [o.matrix_world @ Vector(c) for o in meshes for c in o.bound_box]
    low = Vector((min(c.x for c in corners), min(c.y for c in corners), min(c.z for c in corners)))
    high = Vector((max(c.x for c in corners), max(c.y for c in corners), max(c.z for c in corners)))
    center = (low + high) / 2
    radius = max((high - low).length / 2, 1e-4)

    render = scene.render
    render.engine = "CYCLES"
    render.resolution_x = int(shot["width"])
    render.resolution_y = int(shot["height"])
    render.resolution_percentage = 100
    render.film_transparent = False
    render.use_file_extension = True
    render.use_overwrite = True
    render.use_placeholder = False
    scene.view_settings.view_transform = "Standard"  # colours as authored; Filmic greys the white backdrop
    scene.cycles.samples = int(shot["samples"])
    scene.cycles.use_denoising = False
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.seed = 0

    world = bpy.data.worlds.new("MontageStudio")
    world.use_nodes = True
    background = world.node_tree.nodes["Background"]
    background.inputs["Color"].default_value = (0.8, 0.8, 0.8, 1.0)
    background.inputs["Strength"].default_value = 1.0
    scene.world = world

    camera_data = bpy.data.cameras.new("MontageCamera")
    camera_data.type = "PERSP"
    camera_data.sensor_fit = "AUTO"
    camera_data.angle = math.radians(40)  # the larger side's field of view
    camera = bpy.data.objects.new("MontageCamera", camera_data)
    scene.collection.objects.link(camera)
    scene.camera = camera
    aspect = min(render.resolution_x, render.resolution_y) / max(render.resolution_x, render.resolution_y)
    narrow = 2 * math.atan(math.tan(camera_data.angle / 2) * aspect)
    # The bounding sphere fits the narrower field of view, with a margin.
    distance = radius / math.sin(narrow / 2) * 1.1
    camera_data.clip_start = max(distance - radius * 2, distance / 1000)
    camera_data.clip_end = distance + radius * 4

    def orbit(azimuth, elevation, d):
        az, el = math.radians(azimuth), math.radians(elevation)
        # Blender's glTF import: the model's front (+Z in glTF) faces -Y.
        return center + Vector((math.cos(el) * math.sin(az), -math.cos(el) * math.cos(az), math.sin(el))) * d

    # Key, fill and rim: soft area lights around the model, strength kept with the distance.
    for name, azimuth, elevation, power in (("Key", -40, 40, 1.0), ("Fill", 60, 15, 0.45), ("Rim", 170, 50, 0.7)):
        light_data = bpy.data.lights.new(f"Montage{name}", type="AREA")
        light_data.size = radius * 2
        light_data.energy = power * 25 * (distance**2)
        light = bpy.data.objects.new(f"Montage{name}", light_data)
        scene.collection.objects.link(light)
        light.location = orbit(azimuth, elevation, distance)
        look_at(light, center)

    count = int(shot["count"])
    if shot["mode"] == "stills":
        poses = [PRODUCT_VIEWS[VIEW_ORDER[i]] for i in range(min(count, len(VIEW_ORDER)))]
    else:
        poses = [((i + 1) * 360.0 / count, 20) for i in range(count)]
    # One keyframe per frame, held (constant): frame i shows pose i whichever frames a chunk renders.
    for i, (azimuth, elevation) in enumerate(poses):
        frame = i + 1
        camera.location = orbit(azimuth, elevation, distance)
        look_at(camera, center)
        camera.keyframe_insert("location", frame=frame)
        camera.keyframe_insert("rotation_euler", frame=frame)
    for curve in camera.animation_data.action.fcurves:
        for point in curve.keyframe_points:
            point.interpolation = "CONSTANT"
    scene.frame_start = 1
    scene.frame_end = len(poses)
    use_device(scene, job.get("device", "CPU"))


def main():
    job = job_from_argv()
    mode = job.get("mode")
    try:
        if mode == "inspect":
            inspect(job)
        elif mode == "render":
            render_scene(job)
        elif mode == "product":
            product(job)
        else:
            report("MONTAGE_ERROR", {"setting": True, "message": f"unknown mode {mode!r}"})
            raise SystemExit(3)
    except DeviceError as err:
        report("MONTAGE_DEVICE_ERROR", {"message": str(err)})
        raise SystemExit(3)


main()
