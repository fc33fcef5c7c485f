import { Logger } from '@nestjs/common';
import * as os from 'node:os';
import { NodeJobs } from '../../render-nodes/node-jobs';
import { badInput, MontageError, renderFailed } from '../../src/common/errors';
import { EngineName } from '../../src/engines/engine';
import { type JobContext, type NodeHeartbeat, type RenderTarget, RetryLater } from '../../src/jobs/job.types';
import type { JobQueueRepository } from '../../src/repositories/job-queue/job-queue.repository';
import type { LiveStreamRepository } from '../../src/repositories/live-stream/live-stream.repository';
import type { OutputStorage } from '../../src/repositories/output-storage/port';

const THIS_NODE = `${os.hostname()}-${process.pid}`;
const PIECE = '2';

function target(overrides: Partial<RenderTarget> = {}): RenderTarget {
  return {
    engine: EngineName.Blender,
    routingKey: 'default',
    renderKey: 'rk-abc',
    run: '1',
    project: 'p',
    movie: 'title-3d',
    params: {},
    profile: { format: 'mp4', videoOnly: true, streamable: true },
    channel: 'montage:live:rk-abc:seg:2',
    progressKey: 'montage:progress:rk-abc',
    ...overrides,
  };
}

function heartbeat(id: string, overrides: Partial<NodeHeartbeat> = {}): NodeHeartbeat {
  return {
    id,
    host: id,
    pid: 1,
    version: 'test',
    routingKeys: ['default'],
    concurrency: 1,
    engines: ['ffmpeg-composite', 'blender'],
    blender: { version: '4.2.0', devices: ['CPU'] },
    encoders: [],
    cpus: 4,
    load: [0, 0, 0],
    running: 0,
    startedAt: '2024-01-01T00:00:00.000Z',
    seenAt: '2024-01-01T00:00:00.000Z',
    ...overrides,
  };
}

type Failures = { jobNodes: string[]; runFailures: Record<string, number> };

function setup(failures: Failures = { jobNodes: [], runFailures: {} }, nodes: NodeHeartbeat[] = [], handedOnSince = Date.now()) {
  const storage = { identity: jest.fn(async () => 'store-1'), description: 'test storage' };
  const live = { append: jest.fn(async () => undefined), setProgress: jest.fn(async () => undefined) };
  const queue = {
    renderFailures: jest.fn(async (_run: string, _job: string) => failures),
    liveNodes: jest.fn(async () => [heartbeat(THIS_NODE), ...nodes]),
    noteRenderFailure: jest.fn(async (_run: string, _job: string, _node: string) => undefined),
    recordTiming: jest.fn(async (_key: string, _spf: number) => undefined),
    handedOnSince: jest.fn(async (_run: string, _job: string) => handedOnSince),
  };
  const jobs = new NodeJobs(storage as unknown as OutputStorage, live as unknown as LiveStreamRepository, queue as unknown as JobQueueRepository);
  return { jobs, storage, live, queue };
}

function context(overrides: Partial<JobContext> = {}): JobContext {
  return { attempt: 1, lastAttempt: false, progress: jest.fn(async () => undefined), signal: new AbortController().signal, ...overrides };
}

beforeAll(() => {
  jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
});

afterAll(() => jest.restoreAllMocks());

it('the node id is host-pid (what failures and heartbeats name)', () => {
  expect(setup().jobs.nodeId).toBe(THIS_NODE);
});

describe('NodeJobs.run: a Blender chunk this node failed before', () => {
  it('goes back to another live node that can take it: RetryLater, the work never runs, nothing counted', async () => {
    const { jobs, queue, live } = setup({ jobNodes: [THIS_NODE], runFailures: { [THIS_NODE]: 1 } }, [heartbeat('node-b')]);
    const work = jest.fn(async () => 'rendered');
    const err = await jobs.run(target(), context(), work, PIECE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryLater);
    expect((err as RetryLater).delayMs).toBe(1000);
    expect((err as RetryLater).message).toBe(`failed on ${THIS_NODE} before: left to node-b`);
    expect(work).not.toHaveBeenCalled();
    expect(jobs.running).toBe(0);
    expect(queue.renderFailures).toHaveBeenCalledWith('rk-abc-r1', PIECE);
    // declining is not a failure of the chunk
    expect(queue.noteRenderFailure).not.toHaveBeenCalled();
    expect(live.append).not.toHaveBeenCalled();
  });

  it('names every node it is left to', async () => {
    const { jobs } = setup({ jobNodes: [THIS_NODE], runFailures: {} }, [heartbeat('node-b'), heartbeat('node-c')]);
    await expect(jobs.run(target(), context(), async () => 1, PIECE)).rejects.toThrow(`failed on ${THIS_NODE} before: left to node-b, node-c`);
  });

  it.each<[string, Failures, NodeHeartbeat[]]>([
    ['the other node failed this chunk too', { jobNodes: [THIS_NODE, 'node-b'], runFailures: {} }, [heartbeat('node-b')]],
    ['the other node failed 3 chunks of the run', { jobNodes: [THIS_NODE], runFailures: { 'node-b': 3 } }, [heartbeat('node-b')]],
    ['the other node takes another routing key', { jobNodes: [THIS_NODE], runFailures: {} }, [heartbeat('node-b', { routingKeys: ['gpu'] })]],
    ['the other node has no Blender', { jobNodes: [THIS_NODE], runFailures: {} }, [heartbeat('node-b', { engines: ['ffmpeg-composite'], blender: undefined })]],
    ['no other live node', { jobNodes: [THIS_NODE], runFailures: {} }, []],
  ])('%s → this node tries again: the work runs', async (_what, failures, others) => {
    const { jobs, queue } = setup(failures, others);
    const seen: number[] = [];
    const work = jest.fn(async () => {
      seen.push(jobs.running);
      return 'rendered';
    });
    await expect(jobs.run(target(), context(), work, PIECE)).resolves.toBe('rendered');
    expect(work).toHaveBeenCalledTimes(1);
    expect(seen).toEqual([1]);
    expect(jobs.running).toBe(0);
    expect(queue.renderFailures).toHaveBeenCalledWith('rk-abc-r1', PIECE);
  });

  it('a CUDA chunk is left only to a node whose Blender has CUDA', async () => {
    const cuda = target({ device: 'CUDA' });
    const cpuOnly = setup({ jobNodes: [THIS_NODE], runFailures: {} }, [heartbeat('node-b', { blender: { version: '4.2.0', devices: ['CPU'] } }), heartbeat('node-c', { blender: undefined })]);
    const work = jest.fn(async () => 'rendered');
    await expect(cpuOnly.jobs.run(cuda, context(), work, PIECE)).resolves.toBe('rendered');
    expect(work).toHaveBeenCalledTimes(1);

    const withGpu = setup({ jobNodes: [THIS_NODE], runFailures: {} }, [heartbeat('node-b', { blender: { version: '4.2.0', devices: ['CPU', 'CUDA'] } })]);
    const declined = jest.fn(async () => 'rendered');
    await expect(withGpu.jobs.run(cuda, context(), declined, PIECE)).rejects.toBeInstanceOf(RetryLater);
    expect(declined).not.toHaveBeenCalled();
  });

  it('a CPU chunk may go to a node that advertises no Blender devices', async () => {
    const { jobs } = setup({ jobNodes: [THIS_NODE], runFailures: {} }, [heartbeat('node-b', { blender: undefined })]);
    await expect(jobs.run(target(), context(), async () => 1, PIECE)).rejects.toBeInstanceOf(RetryLater);
  });

  it('without a routing key on the job, any routing key will do', async () => {
    const { jobs } = setup({ jobNodes: [THIS_NODE], runFailures: {} }, [heartbeat('node-b', { routingKeys: ['gpu'] })]);
    await expect(jobs.run(target({ routingKey: undefined }), context(), async () => 1, PIECE)).rejects.toBeInstanceOf(RetryLater);
  });
});

describe('NodeJobs.run: a node that failed three chunks of the run', () => {
  it('declines any other chunk of it (not failed here before)', async () => {
    const { jobs } = setup({ jobNodes: [], runFailures: { [THIS_NODE]: 3 } }, [heartbeat('node-b')]);
    const work = jest.fn(async () => 1);
    await expect(jobs.run(target(), context(), work, PIECE)).rejects.toBeInstanceOf(RetryLater);
    expect(work).not.toHaveBeenCalled();
    expect(jobs.running).toBe(0);
  });

  it('two failures are not yet three: the work runs', async () => {
    const { jobs } = setup({ jobNodes: [], runFailures: { [THIS_NODE]: 2, 'node-b': 0 } }, [heartbeat('node-b')]);
    await expect(jobs.run(target(), context(), async () => 'rendered', PIECE)).resolves.toBe('rendered');
  });

  it('failures of other nodes only do not stop this one', async () => {
    const { jobs } = setup({ jobNodes: ['node-b'], runFailures: { 'node-b': 5 } }, [heartbeat('node-b'), heartbeat('node-c')]);
    await expect(jobs.run(target(), context(), async () => 'rendered', PIECE)).resolves.toBe('rendered');
  });
});

describe('NodeJobs.run: when the queue cannot say', () => {
  it('failures unreadable → the work runs', async () => {
    const { jobs, queue } = setup();
    queue.renderFailures.mockRejectedValueOnce(new Error('redis away'));
    await expect(jobs.run(target(), context(), async () => 'rendered', PIECE)).resolves.toBe('rendered');
    expect(queue.liveNodes).not.toHaveBeenCalled();
  });

  it('live nodes unreadable → the work runs here', async () => {
    const { jobs, queue } = setup({ jobNodes: [THIS_NODE], runFailures: {} }, [heartbeat('node-b')]);
    queue.liveNodes.mockRejectedValueOnce(new Error('redis away'));
    await expect(jobs.run(target(), context(), async () => 'rendered', PIECE)).resolves.toBe('rendered');
  });
});

describe('NodeJobs.run: failures are remembered for Blender chunks', () => {
  it('a non-permanent failure is noted for the run, the chunk and this node, and rethrown', async () => {
    const { jobs, queue, live } = setup();
    const boom = new Error('Blender exited with code 139');
    await expect(jobs.run(target(), context(), async () => Promise.reject(boom), PIECE)).rejects.toBe(boom);
    expect(queue.noteRenderFailure).toHaveBeenCalledTimes(1);
    expect(queue.noteRenderFailure).toHaveBeenCalledWith('rk-abc-r1', '2', THIS_NODE);
    expect(jobs.running).toBe(0);
    // attempts are left: the failure is not published as the render's
    expect(live.append).not.toHaveBeenCalled();
  });

  it('a render_failed MontageError (5xx) is not permanent: noted', async () => {
    const { jobs, queue } = setup();
    await expect(jobs.run(target({ renderKey: 'rk-z', run: '7' }), context(), async () => Promise.reject(renderFailed('Blender saved 3 frames of 12')), PIECE)).rejects.toBeInstanceOf(MontageError);
    expect(queue.noteRenderFailure).toHaveBeenCalledWith('rk-z-r7', '2', THIS_NODE);
  });

  it('on the last attempt: noted, and published on the channel as an error', async () => {
    const { jobs, queue, live } = setup();
    await expect(jobs.run(target(), context({ lastAttempt: true }), async () => Promise.reject(new Error('x')), PIECE)).rejects.toThrow('x');
    expect(queue.noteRenderFailure).toHaveBeenCalledTimes(1);
    expect(live.append).toHaveBeenCalledWith('montage:live:rk-abc:seg:2', { kind: 'error', message: 'the render failed unexpectedly (the render node log has the details)' });
  });

  it('a permanent failure (bad input) is not noted: another node would fail alike; it is the render’s at once', async () => {
    const { jobs, queue, live } = setup();
    const err = badInput('binding 0: object "Title" is not in the scene', [{ field: 'blender.bindings.0', message: 'x' }]);
    await expect(jobs.run(target(), context(), async () => Promise.reject(err), PIECE)).rejects.toBe(err);
    expect(queue.noteRenderFailure).not.toHaveBeenCalled();
    expect(live.append).toHaveBeenCalledWith('montage:live:rk-abc:seg:2', {
      kind: 'error',
      message: err.message,
      errorKind: 'bad_input',
      details: [{ field: 'blender.bindings.0', message: 'x' }],
    });
  });

  it('a job handed back (signal aborted) is not a failure of this node', async () => {
    const { jobs, queue, live } = setup();
    const controller = new AbortController();
    controller.abort();
    await expect(jobs.run(target(), context({ signal: controller.signal, lastAttempt: true }), async () => Promise.reject(new Error('aborted')), PIECE)).rejects.toThrow('aborted');
    expect(queue.noteRenderFailure).not.toHaveBeenCalled();
    expect(live.append).not.toHaveBeenCalled();
  });

  it('a failure to note the failure does not hide the failure', async () => {
    const { jobs, queue } = setup();
    queue.noteRenderFailure.mockRejectedValueOnce(new Error('redis away'));
    await expect(jobs.run(target(), context(), async () => Promise.reject(new Error('the real one')), PIECE)).rejects.toThrow('the real one');
  });

  it('a Blender job without a piece (a whole output) follows no failure rules', async () => {
    const { jobs, queue } = setup({ jobNodes: [THIS_NODE], runFailures: { [THIS_NODE]: 9 } }, [heartbeat('node-b')]);
    await expect(jobs.run(target(), context(), async () => 'rendered')).resolves.toBe('rendered');
    await expect(jobs.run(target(), context(), async () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(queue.renderFailures).not.toHaveBeenCalled();
    expect(queue.noteRenderFailure).not.toHaveBeenCalled();
  });
});

describe('NodeJobs.run: composite targets', () => {
  it('never consult or note render failures, even for a piece this node "failed"', async () => {
    const { jobs, queue } = setup({ jobNodes: [THIS_NODE], runFailures: { [THIS_NODE]: 9 } }, [heartbeat('node-b')]);
    const composite = target({ engine: EngineName.FfmpegComposite });
    const work = jest.fn(async () => 'rendered');
    await expect(jobs.run(composite, context(), work, PIECE)).resolves.toBe('rendered');
    expect(work).toHaveBeenCalledTimes(1);
    await expect(jobs.run(composite, context(), async () => Promise.reject(new Error('ffmpeg died')), PIECE)).rejects.toThrow('ffmpeg died');
    expect(queue.renderFailures).not.toHaveBeenCalled();
    expect(queue.liveNodes).not.toHaveBeenCalled();
    expect(queue.noteRenderFailure).not.toHaveBeenCalled();
    expect(jobs.running).toBe(0);
  });
});

describe('NodeJobs.run: the storage check comes after the failure rules', () => {
  it('another storage is a permanent failure: not noted as the node’s', async () => {
    const { jobs, queue, storage } = setup();
    const work = jest.fn(async () => 1);
    await expect(jobs.run(target({ storageId: 'store-2' }), context(), work, PIECE)).rejects.toMatchObject({ kind: 'render_failed', permanent: true });
    expect(storage.identity).toHaveBeenCalled();
    expect(work).not.toHaveBeenCalled();
    expect(queue.noteRenderFailure).not.toHaveBeenCalled();
  });
});

describe('NodeJobs.noteTiming', () => {
  const timing = { key: 'blender:p/title-3d@abc:0123456789ab', secondsPerFrame: 1.25, startupSeconds: 4, totalSeconds: 19 };

  it('records the seconds per frame under the scene key', () => {
    const { jobs, queue } = setup();
    jobs.noteTiming(target(), 'frames 0–12', timing);
    expect(queue.recordTiming).toHaveBeenCalledTimes(1);
    expect(queue.recordTiming).toHaveBeenCalledWith('blender:p/title-3d@abc:0123456789ab', 1.25);
  });

  it('no timing → nothing recorded', () => {
    const { jobs, queue } = setup();
    jobs.noteTiming(target(), 'frames 0–12', undefined);
    expect(queue.recordTiming).not.toHaveBeenCalled();
  });

  it('a queue that cannot record does not throw (timings are a hint)', async () => {
    const { jobs, queue } = setup();
    queue.recordTiming.mockRejectedValueOnce(new Error('redis away'));
    expect(() => jobs.noteTiming(target(), 'frames 0–12', { ...timing, totalSeconds: 0 })).not.toThrow();
    await new Promise((resolve) => setImmediate(resolve)); // an unhandled rejection would fail the run
    expect(queue.recordTiming).toHaveBeenCalledTimes(1);
  });
});

describe('a chunk handed on for long', () => {
  it('runs on the node that failed it once it has waited 30 s for another (a delayed job goes back behind newer ones)', async () => {
    const { jobs, queue } = setup({ jobNodes: [THIS_NODE], runFailures: {} }, [heartbeat('node-b')], Date.now() - 31_000);
    const work = jest.fn(async () => 'rendered');
    await expect(jobs.run(target(), context(), work, PIECE)).resolves.toBe('rendered');
    expect(queue.handedOnSince).toHaveBeenCalledWith('rk-abc-r1', PIECE);
  });

  it('within those 30 s it is still handed on', async () => {
    const { jobs } = setup({ jobNodes: [THIS_NODE], runFailures: {} }, [heartbeat('node-b')], Date.now() - 29_000);
    const work = jest.fn(async () => 'rendered');
    await expect(jobs.run(target(), context(), work, PIECE)).rejects.toBeInstanceOf(RetryLater);
    expect(work).not.toHaveBeenCalled();
  });
});
