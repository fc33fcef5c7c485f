import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { EngineName } from '../../src/engines/engine';
import { farmFileKey, farmFrameKey } from '../../src/farm/farm-keys';
import { FARM_SCRIPT_DIR } from '../../src/farm/blender-farm-args';
import { sandboxedArgs } from '../../src/farm/farm-sandbox';
import type { FarmFileRef, ProductShot, RenderFarmFramesPayload, RenderFarmFramesResult } from '../../src/farm/farm.types';
import { JobName, type JobPayloads, type JobResults, queueName } from '../../src/jobs/job.types';
import { JobQueueRepository } from '../../src/repositories/job-queue/job-queue.repository';
import { LocalOutputStorage } from '../../src/repositories/output-storage/local';
import { readWhole } from '../../src/repositories/output-storage/port';
import { eventually, killGroup, type Proc, type RedisProc, startNodeProcess, startRedis } from '../helpers/processes';

// The farm's node jobs with real components: the built render-node process, Debian's Blender
// (CPU, Cycles, tiny frames), redis-server, ffmpeg/ffprobe and sharp. Payloads are enqueued
// straight on the node's queue, as the API does; files are put into the local storage of the
// data dir the node shares. Fixtures are made here: a .blend saved by Blender itself, and a GLB
// written by @gltf-transform/core.

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-farm-node-'));
const dataDir = path.join(work, 'data');
const ROUTING = 'farmnode';
const QUEUE = queueName(ROUTING, EngineName.Blender, 'CPU');
const PROJECT = 'farmtest';
let redis: RedisProc;
let node: Proc;
let queue: JobQueueRepository;
let storage: LocalOutputStorage;
let storageId: string | undefined;

/** A scene of two cameras: CamA looks at a red emitting plane, CamB at a blue one; two view layers; frames 1–6 at 64×48. */
const SCENE_SCRIPT = `
import bpy, sys
out, image = sys.argv[sys.argv.index("--") + 1:]
for o in list(bpy.data.objects):
    bpy.data.objects.remove(o, do_unlink=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.samples = 1
scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 48, 100
scene.frame_start, scene.frame_end = 1, 6
scene.view_layers[0].name = "LayerA"
scene.view_layers.new("LayerB")
world = bpy.data.worlds.new("W"); world.color = (0, 0, 0); scene.world = world
def plane(name, x, color):
    bpy.ops.mesh.primitive_plane_add(size=4, location=(x, 0, 0), rotation=(1.5708, 0, 0))
    p = bpy.context.object; p.name = name
    m = bpy.data.materials.new(name); m.use_nodes = True
    nodes = m.node_tree.nodes; nodes.clear()
    e = nodes.new("ShaderNodeEmission"); e.inputs["Color"].default_value = color
    o = nodes.new("ShaderNodeOutputMaterial"); m.node_tree.links.new(e.outputs[0], o.inputs[0])
    p.data.materials.append(m)
    return m
red = plane("Red", -10, (1, 0, 0, 1))
plane("Blue", 10, (0, 0, 1, 1))
for name, x in (("CamA", -10), ("CamB", 10)):
    c = bpy.data.objects.new(name, bpy.data.cameras.new(name)); c.location = (x, -6, 0); c.rotation_euler = (1.5708, 0, 0)
    scene.collection.objects.link(c)
scene.camera = bpy.data.objects["CamA"]
if image:
    # An absolute path, and a relative one that climbs out of the scene's folder.
    for path in (image, "//../../../../" + image.lstrip("/")):
        img = bpy.data.images.load(image, check_existing=False); img.filepath = path
        tex = red.node_tree.nodes.new("ShaderNodeTexImage"); tex.image = img
bpy.ops.wm.save_as_mainfile(filepath=out, relative_remap=False)
`;

function makeBlend(file: string, image = ''): Buffer {
  const script = path.join(work, 'make_scene.py');
  fs.writeFileSync(script, SCENE_SCRIPT);
  execFileSync('blender', ['--factory-startup', '-b', '-Y', '--python-exit-code', '3', '-P', script, '--', file, image], { stdio: 'ignore', timeout: 120_000 });
  return fs.readFileSync(file);
}

/** A red box (1.6 × 1 × 1.6) as a GLB, written by @gltf-transform/core (in a process of its own: see the helper). */
function makeGlb(): Buffer {
  const out = path.join(work, 'box.glb');
  execFileSync(process.execPath, [path.join(__dirname, '..', 'helpers', 'make-glb.mjs'), out, '#cc0d0d'], { stdio: 'inherit', timeout: 60_000 });
  return fs.readFileSync(out);
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Stores bytes as a project's file (content-addressed, as confirm does) and returns its reference. */
async function storeFile(filePath: string, data: Buffer, ext: string): Promise<FarmFileRef> {
  const hash = sha256(data);
  const storageKey = farmFileKey(PROJECT, hash);
  await storage.storeOutput(storageKey, ext, async (to) => fs.promises.writeFile(to, data));
  return { path: filePath, storageKey, ext, sha256: hash, size: data.length };
}

let jobs = 0;
/** One job on the node's queue, one attempt: its result, or its error. */
async function run<N extends JobName.RenderFarmFrames | JobName.InspectScene | JobName.EncodeTurntable>(name: N, payload: JobPayloads[N]): Promise<JobResults[N]> {
  const jobId = `farm-test-${++jobs}`;
  await queue.enqueue(QUEUE, name, payload, jobId, { attempts: 1 });
  return queue.waitFor<N>(QUEUE, jobId, { pollMs: 500 });
}

const sceneSettings = { format: 'PNG' as const, resolutionPercent: 100, device: 'CPU' as const, samples: 1 };
function scenePayload(job: string, main: FarmFileRef, frames: number[], settings: Partial<RenderFarmFramesPayload['settings']> = {}): RenderFarmFramesPayload {
  return { engine: 'blender', job, project: PROJECT, chunk: 0, attempt: 1, frames, source: { kind: 'blend', main, files: [] }, settings: { ...sceneSettings, ...settings }, storageId };
}

async function decoded(key: string, ext: string): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(await readWhole(storage, key, ext)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function mean(img: { data: Buffer; channels: number }): number[] {
  const sums = [0, 0, 0];
  for (let i = 0; i < img.data.length; i += img.channels) for (let c = 0; c < 3; c++) sums[c] += img.data[i + c];
  const n = img.data.length / img.channels;
  return sums.map((s) => s / n);
}

function ffprobe(file: string): { frames: number; rate: string; width: number; height: number; codec: string } {
  const out = JSON.parse(
    execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-show_entries', 'stream=nb_read_frames,r_frame_rate,width,height,codec_name', '-of', 'json', file], { encoding: 'utf8' }),
  ) as { streams: Array<{ nb_read_frames: string; r_frame_rate: string; width: number; height: number; codec_name: string }> };
  const s = out.streams[0];
  return { frames: Number(s.nb_read_frames), rate: s.r_frame_rate, width: s.width, height: s.height, codec: s.codec_name };
}

beforeAll(async () => {
  fs.mkdirSync(dataDir);
  redis = await startRedis(fs.mkdtempSync(path.join(work, 'redis-')));
  storage = new LocalOutputStorage(dataDir);
  await storage.init();
  storageId = await storage.identity();
  queue = new JobQueueRepository(redis.url);
  await queue.whenAvailable();
  // The sandbox required: a node where bwrap does not work does not start (./run installs bubblewrap).
  node = startNodeProcess(dataDir, redis.url, { ROUTING_KEYS: ROUTING, BLENDER_THREADS: '1', EMBEDDED_RENDER_NODE: '0', FARM_SANDBOX: 'bwrap' });
  await eventually('the render node with Blender', async () => ((await queue.liveNodes()).some((n) => n.pid === node.pid && n.blender?.devices.includes('CPU')) ? true : undefined), 90_000);
}, 120_000);

afterAll(async () => {
  if (node) {
    killGroup(node.pid);
    await node.exited;
  }
  await queue?.close();
  await redis?.stop();
  fs.rmSync(work, { recursive: true, force: true });
}, 30_000);

describe('scene jobs', () => {
  let main: FarmFileRef;
  beforeAll(async () => {
    main = await storeFile('shot/two-cameras.blend', makeBlend(path.join(work, 'two-cameras.blend')), 'blend');
  }, 120_000);

  it('InspectScene: the inventory names both cameras, both view layers and the frame range', async () => {
    const { inventory, node: by } = await run(JobName.InspectScene, { project: PROJECT, file: main });
    expect(by).toMatch(new RegExp(`-${node.pid}$`));
    expect(inventory).toMatchObject({ cameras: ['CamA', 'CamB'], camera: 'CamA', viewLayers: ['LayerA', 'LayerB'], frameStart: 1, frameEnd: 6, frameStep: 1, width: 64, height: 48, resolutionPercent: 100, engine: 'CYCLES', externalFiles: [] });
    expect(inventory.savedWith).toMatch(/^3\.4/);
  });

  it('InspectScene: a file that is not a .blend fails for good, saying so', async () => {
    const junk = await storeFile('fake.blend', Buffer.from('BLENDER? no, just text\n'.repeat(10)), 'blend');
    await expect(run(JobName.InspectScene, { project: PROJECT, file: junk })).rejects.toThrow('fake.blend is not a readable .blend file');
  });

  it('RenderFarmFrames: frames [1, 3] with camera B are stored, exactly those, in blue where camera A sees red, and reported done with their hashes', async () => {
    const result: RenderFarmFramesResult = await run(JobName.RenderFarmFrames, scenePayload('job_camb', main, [1, 3], { camera: 'CamB', renderLayer: 'LayerB' }));
    expect(result.frames.map((f) => f.frame)).toEqual([1, 3]);
    const a: RenderFarmFramesResult = await run(JobName.RenderFarmFrames, scenePayload('job_cama', main, [2], { camera: 'CamA', format: 'WEBP' }));
    expect(a.frames).toEqual([expect.objectContaining({ frame: 2, ext: 'webp', storageKey: farmFrameKey('job_cama', 2) })]);

    const states = await queue.farmFrameStates('job_camb');
    expect(Object.keys(states).map(Number).sort()).toEqual([1, 3]);
    for (const f of result.frames) {
      expect(f).toMatchObject({ storageKey: farmFrameKey('job_camb', f.frame), ext: 'png' });
      const stored = await readWhole(storage, f.storageKey, 'png');
      expect(sha256(stored)).toBe(f.sha256);
      expect(stored.length).toBe(f.bytes);
      expect(states[f.frame]).toMatchObject({ status: 'done', node: result.node, sha256: f.sha256, bytes: f.bytes, storageKey: f.storageKey, ext: 'png' });
    }
    expect(await storage.stat(farmFrameKey('job_camb', 2), 'png')).toBeUndefined();

    const blue = mean(await decoded(farmFrameKey('job_camb', 1), 'png'));
    const red = mean(await decoded(farmFrameKey('job_cama', 2), 'webp'));
    expect((await decoded(farmFrameKey('job_camb', 3), 'png')).width).toBe(64);
    expect(blue[2]).toBeGreaterThan(blue[0] + 60);
    expect(red[0]).toBeGreaterThan(red[2] + 60);
  });

  it('RenderFarmFrames: an unknown camera fails for good, naming the cameras the scene has', async () => {
    await expect(run(JobName.RenderFarmFrames, scenePayload('job_nocam', main, [1], { camera: 'CamZ' }))).rejects.toThrow(/camera "CamZ" is not in the scene \(it has: .*CamA.*CamB/);
    expect((await queue.farmFrameStates('job_nocam'))[1]).toMatchObject({ status: 'failed', error: expect.stringContaining('CamZ') });
  });

  it('RenderFarmFrames: a .blend whose image lies outside its folder is refused before rendering, naming the path; nothing is stored', async () => {
    const secret = path.join(dataDir, 'secret.png');
    await sharp({ create: { width: 4, height: 4, channels: 3, background: '#00ff00' } }).png().toFile(secret);
    const hostile = await storeFile('hostile.blend', makeBlend(path.join(work, 'hostile.blend'), secret), 'blend');
    const inventory = (await run(JobName.InspectScene, { project: PROJECT, file: hostile })).inventory;
    const climbing = `//../../../../${secret.slice(1)}`;
    expect(inventory.externalFiles).toEqual([climbing, secret]);

    const failure = run(JobName.RenderFarmFrames, scenePayload('job_hostile', hostile, [1, 2]));
    await expect(failure).rejects.toThrow(`reads ${secret}, outside the job's folder`);
    await expect(failure).rejects.toThrow(`reads ${climbing}, outside the job's folder`);
    const states = await queue.farmFrameStates('job_hostile');
    expect(states[1]).toMatchObject({ status: 'failed', error: expect.stringContaining(secret) });
    expect(states[2]).toMatchObject({ status: 'failed' });
    expect(await storage.stat(farmFrameKey('job_hostile', 1), 'png')).toBeUndefined();
    expect(await storage.stat(farmFrameKey('job_hostile', 2), 'png')).toBeUndefined();
  });

  it('a .blend linking a library outside its folder: the inventory keeps the linked camera\'s name to itself, and the render is refused', async () => {
    const lib = path.join(dataDir, 'other-project.blend');
    const linking = path.join(work, 'linking.blend');
    const script = path.join(work, 'link.py');
    fs.writeFileSync(
      script,
      `import bpy, sys
lib, out = sys.argv[sys.argv.index("--") + 1:]
cam = bpy.data.objects.new("SecretCam", bpy.data.cameras.new("SecretCam"))
bpy.context.scene.collection.objects.link(cam)
bpy.ops.wm.save_as_mainfile(filepath=lib)
bpy.ops.wm.read_factory_settings(use_empty=True)
with bpy.data.libraries.load(lib, link=True) as (src, dst):
    dst.objects = ["SecretCam"]
bpy.context.scene.collection.objects.link(dst.objects[0])
bpy.ops.wm.save_as_mainfile(filepath=out, relative_remap=False)
`,
    );
    execFileSync('blender', ['--factory-startup', '-b', '-Y', '--python-exit-code', '3', '-P', script, '--', lib, linking], { stdio: 'ignore', timeout: 120_000 });
    const file = await storeFile('linking.blend', fs.readFileSync(linking), 'blend');
    const { inventory } = await run(JobName.InspectScene, { project: PROJECT, file });
    expect(inventory.externalFiles).toEqual([lib]);
    expect(inventory.cameras).toEqual([]);
    await expect(run(JobName.RenderFarmFrames, scenePayload('job_linking', file, [1]))).rejects.toThrow(`library "other-project.blend" reads ${lib}, outside the job's folder`);
  });

  describe('a hostile .blend\'s other ways out', () => {
    /** A scene (one emitting plane, one camera) with one hostile part: `kind`, pointing at `target`. */
    const HOSTILE_SCRIPT = `
import bpy, sys
out, kind, target = sys.argv[sys.argv.index("--") + 1:]
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.samples = 1
scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 32, 24, 100
scene.frame_start, scene.frame_end = 1, 2
mat = bpy.data.materials.new("Mat"); mat.use_nodes = True; mat.use_fake_user = True
if kind == "ies":
    n = mat.node_tree.nodes.new("ShaderNodeTexIES"); n.mode = "EXTERNAL"; n.filepath = target
elif kind == "osl":
    scene.cycles.shading_system = True
    n = mat.node_tree.nodes.new("ShaderNodeScript"); n.mode = "INTERNAL"
elif kind == "pointcache":
    bpy.ops.mesh.primitive_plane_add()
    m = bpy.context.object.modifiers.new("Cloth", "CLOTH")
    m.point_cache.use_disk_cache = True; m.point_cache.use_external = True; m.point_cache.filepath = target
elif kind == "strip":
    strip = scene.sequence_editor_create().sequences.new_image("Strip", "//img/a.png", 1, 1)
    strip.elements.append(target)
elif kind == "image":
    img = bpy.data.images.load(target, check_existing=False); img.use_fake_user = True
elif kind == "fileout":
    scene.use_nodes = True
    out_node = scene.node_tree.nodes.new("CompositorNodeOutputFile"); out_node.base_path = target
    scene.node_tree.links.new(scene.node_tree.nodes["Render Layers"].outputs[0], out_node.inputs[0])
bpy.ops.wm.save_as_mainfile(filepath=out, relative_remap=False)
`;
    function makeHostile(kind: string, target: string): string {
      const script = path.join(work, 'make_hostile.py');
      fs.writeFileSync(script, HOSTILE_SCRIPT);
      const file = path.join(work, `hostile-${kind}.blend`);
      execFileSync('blender', ['--factory-startup', '-b', '-Y', '--python-exit-code', '3', '-P', script, '--', file, kind, target], { stdio: 'ignore', timeout: 120_000 });
      return file;
    }
    // Readable inside the sandbox too (/usr is bound read-only): only the script's check keeps it out.
    const readable = '/usr/share/blender/scripts/addons/mesh_tiny_cad/icons/VTX.png';

    it.each([
      ['an image at an absolute path of a file the sandbox can read', 'image', readable, `image "VTX.png" reads ${readable}, outside the job's folder`],
      ['an IES profile node reading a file of its own', 'ies', '/etc/hostname', 'IES profile "Mat" reads /etc/hostname, outside the job\'s folder'],
      ['an OSL script node (OSL code may read any file)', 'osl', '', 'OSL script node "Mat" / "Script" is not rendered on the farm'],
      ['an external point cache', 'pointcache', '/var/cache', 'cloth cache "Plane" reads /var/cache, outside the job\'s folder'],
      ['an image strip whose element climbs out of its folder', 'strip', '../../../../etc/x.png', 'image strip "Strip" reads //img/../../../../etc/x.png, outside the job\'s folder'],
    ])('RenderFarmFrames: %s is refused for good, saying so; nothing stored', async (_what, kind, target, message) => {
      expect(fs.existsSync(readable)).toBe(true);
      const job = `job_way_${kind}`;
      const file = await storeFile(`${kind}.blend`, fs.readFileSync(makeHostile(kind, target)), 'blend');
      await expect(run(JobName.RenderFarmFrames, scenePayload(job, file, [1]))).rejects.toThrow(message);
      expect((await queue.farmFrameStates(job))[1]).toMatchObject({ status: 'failed' });
      expect(await storage.stat(farmFrameKey(job, 1), 'png')).toBeUndefined();
    });

    it('RenderFarmFrames: a compositor File Output node writing to an absolute path outside the folder is muted: the frames are rendered, nothing is written there', async () => {
      const escape = path.join(work, 'escape');
      const file = makeHostile('fileout', `${escape}/`);
      // Rendered as it is, outside Montage, the node writes there: the check below can fail.
      execFileSync('blender', ['--factory-startup', '-b', '-Y', file, '-o', path.join(work, 'plain', 'f_###'), '-f', '1'], { stdio: 'ignore', timeout: 120_000 });
      expect(fs.readdirSync(escape).length).toBeGreaterThan(0);
      fs.rmSync(escape, { recursive: true, force: true });

      const main = await storeFile('fileout.blend', fs.readFileSync(file), 'blend');
      const result = await run(JobName.RenderFarmFrames, scenePayload('job_fileout', main, [1, 2]));
      expect(result.frames.map((f) => f.frame)).toEqual([1, 2]);
      expect((await decoded(farmFrameKey('job_fileout', 2), 'png')).width).toBe(32);
      expect(fs.existsSync(escape)).toBe(false);
    });
  });

  it('the sandbox a farm Blender gets (the node\'s own args): the data dir holds only its folder, the network and the system are closed; outside it all is there', async () => {
    const secret = path.join(dataDir, 'secret.txt');
    fs.writeFileSync(secret, 'secret');
    fs.mkdirSync(path.join(dataDir, 'work', 'farm'), { recursive: true });
    const workspace = fs.mkdtempSync(path.join(dataDir, 'work', 'farm', 'sandbox-check-'));
    // The probe connects and hangs up at once: a reset is no failure of the test.
    const server = net.createServer((socket) => socket.on('error', () => undefined).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const probe = `
import json, os, socket, sys
data, secret, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = {"data": sorted(os.listdir(data)), "secret": os.path.exists(secret)}
try:
    socket.create_connection(("127.0.0.1", port), timeout=3).close(); out["connect"] = True
except OSError:
    out["connect"] = False
try:
    open("/usr/montage-sandbox-check", "w"); out["writeUsr"] = True
except OSError:
    out["writeUsr"] = False
open(os.path.join(os.getcwd(), "written"), "w").write("x")
print(json.dumps(out))
`;
    const argv = ['-c', probe, dataDir, secret, String(port)];
    try {
      const run = (command: string, args: string[]) => {
        // Asynchronous: the test's own server must answer the connection outside the sandbox.
        return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
          const child = spawn(command, args, { cwd: workspace });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
          child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          child.on('close', (code) => resolve({ code, stdout, stderr }));
        });
      };
      const outside = await run('/usr/bin/python3', argv);
      expect(JSON.parse(outside.stdout)).toEqual({ data: expect.arrayContaining(['secret.txt', 'work']), secret: true, connect: true, writeUsr: expect.any(Boolean) });
      fs.rmSync(path.join(workspace, 'written'));
      fs.rmSync('/usr/montage-sandbox-check', { force: true });

      const inside = await run('bwrap', sandboxedArgs('/usr/bin/python3', argv, { workspace, readOnly: [FARM_SCRIPT_DIR] }));
      expect(inside.stderr).toBe('');
      expect(JSON.parse(inside.stdout)).toEqual({ data: ['work'], secret: false, connect: false, writeUsr: false });
      expect(fs.readFileSync(path.join(workspace, 'written'), 'utf8')).toBe('x'); // its own folder: read-write
      expect(spawnSync('bwrap', sandboxedArgs('/usr/bin/ls', [path.join(dataDir, 'work', 'farm')], { workspace, readOnly: [] }), { encoding: 'utf8' }).stdout.trim()).toBe(path.basename(workspace));
      expect(spawnSync('bwrap', sandboxedArgs('/usr/bin/ls', [secret], { workspace, readOnly: [] }), { encoding: 'utf8' }).status).not.toBe(0);
    } finally {
      server.close();
      fs.rmSync(workspace, { recursive: true, force: true });
      fs.rmSync(secret, { force: true });
    }
  });

  it('RenderFarmFrames: another attempt keeps the frames an earlier one stored (it renders only the rest), and a last failure marks only those not done', async () => {
    const earlier = { status: 'done' as const, node: 'earlier-node', storageKey: farmFrameKey('job_again', 1), ext: 'png', bytes: 3, sha256: sha256(Buffer.from('png')), at: new Date().toISOString() };
    await storage.storeOutput(earlier.storageKey, 'png', async (to) => fs.promises.writeFile(to, 'png'));
    await queue.setFarmFrameState('job_again', 1, earlier);
    const result = await run(JobName.RenderFarmFrames, scenePayload('job_again', main, [1, 2]));
    expect(result.frames).toEqual([
      { frame: 1, storageKey: earlier.storageKey, ext: 'png', bytes: 3, sha256: earlier.sha256 },
      expect.objectContaining({ frame: 2, storageKey: farmFrameKey('job_again', 2) }),
    ]);
    const states = await queue.farmFrameStates('job_again');
    expect(states[1]).toEqual(earlier);
    expect(states[2]).toMatchObject({ status: 'done', node: result.node });
    expect((await readWhole(storage, earlier.storageKey, 'png')).toString()).toBe('png'); // not rendered again

    await queue.setFarmFrameState('job_again_fail', 1, { ...earlier, storageKey: farmFrameKey('job_again_fail', 1) });
    await expect(run(JobName.RenderFarmFrames, scenePayload('job_again_fail', main, [1, 2], { camera: 'CamZ' }))).rejects.toThrow('CamZ');
    const failed = await queue.farmFrameStates('job_again_fail');
    expect(failed[1]).toMatchObject({ status: 'done', node: 'earlier-node' });
    expect(failed[2]).toMatchObject({ status: 'failed', error: expect.stringContaining('CamZ') });
  });

  it('RenderFarmFrames: a job deleted before its chunk starts renders nothing; one deleted while it renders stores no more frames and marks none failed', async () => {
    await queue.removeFarmJob('job_gone');
    expect(await run(JobName.RenderFarmFrames, scenePayload('job_gone', main, [1, 2]))).toEqual({ node: expect.any(String), frames: [] });
    expect(await queue.farmFrameStates('job_gone')).toEqual({});

    // Frames slow enough (many samples) that the deletion lands mid-chunk.
    const jobId = `farm-test-${++jobs}`;
    await queue.enqueue(QUEUE, JobName.RenderFarmFrames, scenePayload('job_deleted', main, [1, 2, 3, 4, 5, 6], { samples: 2000 }), jobId, { attempts: 1 });
    await eventually('frame 1 stored', async () => ((await queue.farmFrameStates('job_deleted'))[1]?.status === 'done' ? true : undefined), 120_000);
    await queue.removeFarmJob('job_deleted');
    const result = await queue.waitFor<JobName.RenderFarmFrames>(QUEUE, jobId, { pollMs: 300 });
    expect(result.frames.length).toBeGreaterThan(0);
    expect(result.frames.length).toBeLessThan(6);
    const states = await queue.farmFrameStates('job_deleted');
    expect(Object.values(states).filter((s) => s.status === 'failed')).toEqual([]);
    for (const frame of [1, 2, 3, 4, 5, 6]) {
      const kept = result.frames.some((f) => f.frame === frame);
      expect(states[frame]?.status ?? 'none').toBe(kept ? 'done' : 'rendering');
      expect(await storage.stat(farmFrameKey('job_deleted', frame), 'png')).toEqual(kept ? expect.anything() : undefined);
    }
  }, 240_000);

  it('RenderFarmFrames: a stopped job renders nothing', async () => {
    await queue.stopFarmJob('job_stopped');
    const result = await run(JobName.RenderFarmFrames, scenePayload('job_stopped', main, [1, 2]));
    expect(result.frames).toEqual([]);
    expect(await queue.farmFrameStates('job_stopped')).toEqual({});
    expect(await storage.stat(farmFrameKey('job_stopped', 1), 'png')).toBeUndefined();
  });

  it('the node leaves no job folder behind', () => {
    expect(fs.readdirSync(path.join(dataDir, 'work', 'farm'))).toEqual([]);
  });
});

describe('product renders', () => {
  let model: FarmFileRef;
  beforeAll(async () => {
    model = await storeFile('products/box.glb', makeGlb(), 'glb');
  });
  const productPayload = (job: string, shot: ProductShot): RenderFarmFramesPayload => ({
    engine: 'blender',
    job,
    project: PROJECT,
    chunk: 0,
    attempt: 1,
    frames: Array.from({ length: shot.count }, (_, i) => i + 1),
    source: { kind: 'product', model, shot },
    settings: { format: 'PNG', resolutionPercent: 100, device: 'CPU' },
    storageId,
  });

  it('stills: six views of the model, each different, the model in the middle of the frame on a light backdrop', async () => {
    const result = await run(JobName.RenderFarmFrames, productPayload('job_stills', { mode: 'stills', count: 6, width: 64, height: 64, samples: 2 }));
    expect(result.frames.map((f) => f.frame)).toEqual([1, 2, 3, 4, 5, 6]);
    const images = await Promise.all(result.frames.map((f) => decoded(f.storageKey, f.ext)));
    for (const img of images) {
      expect([img.width, img.height]).toEqual([64, 64]);
      const centre = (32 * 64 + 32) * img.channels;
      const [r, g, b] = [img.data[centre], img.data[centre + 1], img.data[centre + 2]];
      expect(r).toBeGreaterThan(g + 40); // the red box
      expect(r).toBeGreaterThan(b + 40);
      const corner = [img.data[0], img.data[1], img.data[2]];
      expect(Math.min(...corner)).toBeGreaterThan(150); // the neutral backdrop
      expect(Math.max(...corner) - Math.min(...corner)).toBeLessThan(20);
    }
    const distinct = new Set(result.frames.map((f) => f.sha256));
    expect(distinct.size).toBe(6);
  });

  it('turntable: 8 frames orbit the model; EncodeTurntable makes an MP4 of 8 frames at the frame rate and a GIF of 8', async () => {
    const result = await run(JobName.RenderFarmFrames, productPayload('job_turn', { mode: 'turntable', count: 8, width: 64, height: 64, samples: 1 }));
    expect(result.frames.map((f) => f.frame)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const frames: FarmFileRef[] = result.frames.map((f) => ({ path: `frame-${f.frame}.png`, storageKey: f.storageKey, ext: f.ext, sha256: f.sha256, size: f.bytes }));
    const encoded = await run(JobName.EncodeTurntable, { job: 'job_turn', project: PROJECT, frames, frameRate: 8, width: 64, height: 64, includeGif: true, mp4Key: 'tt-job_turn', gifKey: 'tt-job_turn-gif', storageId });
    expect(encoded).toMatchObject({ mp4: { frames: 8 }, gif: { frames: 8 } });
    const mp4 = path.join(work, 'turn.mp4');
    const gif = path.join(work, 'turn.gif');
    fs.writeFileSync(mp4, await readWhole(storage, 'tt-job_turn', 'mp4'));
    fs.writeFileSync(gif, await readWhole(storage, 'tt-job_turn-gif', 'gif'));
    expect(fs.statSync(mp4).size).toBe(encoded.mp4.bytes);
    expect(ffprobe(mp4)).toEqual({ frames: 8, rate: '8/1', width: 64, height: 64, codec: 'h264' });
    expect(ffprobe(gif)).toMatchObject({ frames: 8, width: 64, height: 64, codec: 'gif' });
  });
});
