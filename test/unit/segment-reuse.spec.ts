import type { FrameRange } from '../../src/compiler/ffmpeg-args';
import { resolveMovie } from '../../src/compiler/resolve';
import { EngineName } from '../../src/engines/engine';
import { JobName } from '../../src/jobs/job.types';
import { planRenderJobs } from '../../src/renders/render-jobs';
import { planReusedSegments } from '../../src/renders/segment-reuse';
import { paramSpans, planReusableSegments, type ParamSpan } from '../../src/streaming/reusable-segments';
import { templateFrom } from '../helpers/movie-fixtures';

// A 10 s movie at 30 fps: the name in the first scene (0–6 s), the company all through, an
// accent colour from 7 s; a list scene at the end would repeat per item.
const lines = [
  'canvas: { width: 320, height: 180, fps: 30 }',
  'variables:',
  '  name: { type: string, default: Ada }',
  '  company: { type: string, default: Acme }',
  '  accent: { type: color, default: "#ff0000" }',
  'constants:',
  '  brand: "#123456"',
  'scenes:',
  '  - duration: 6',
  '    background: "{{brand}}"',
  '    layers:',
  '      - type: text',
  '        text: "Welcome, {{upper name}}"',
  '      - type: text',
  '        text: "at {{company}}"',
  '        stack: { gap: 10 }',
  '  - duration: 4',
  '    layers:',
  '      - type: text',
  '        text: "{{#if company}}{{company}}{{/if}}"',
  '      - type: solid',
  '        color: "{{accent}}"',
  '        start: 1',
];
const template = templateFrom(lines);
const movie = (params: Record<string, unknown> = {}) => resolveMovie(template, { name: 'Ada', company: 'Acme', accent: '#ff0000', ...params });

describe('which params each scene and layer reads', () => {
  it('records reads through helpers and blocks, per layer; constants are not params', () => {
    expect(movie().paramUse).toEqual({
      scenes: [[], []],
      layers: { 's0.l0': ['name'], 's0.l1': ['company'], 's1.l0': ['company'], 's1.l1': ['accent'] },
    });
  });

  it('a scene made by `each` reads its list; a captions layer reads its source', () => {
    const t = templateFrom([
      'canvas: { width: 320, height: 180, fps: 30 }',
      'variables:',
      '  people: { type: list, default: [a, b] }',
      '  subs: { type: string, default: "1\\n00:00:00,000 --> 00:00:01,000\\nHi\\n" }',
      'scenes:',
      '  - each: people',
      '    duration: 1',
      '    layers:',
      '      - type: text',
      '        text: "{{item}}"',
      '  - duration: 1',
      '    layers:',
      '      - type: captions',
      '        source: subs',
    ]);
    const m = resolveMovie(t, { people: ['a', 'b'], subs: '1\n00:00:00,000 --> 00:00:01,000\nHi\n' });
    expect(m.paramUse!.scenes).toEqual([['people'], ['people'], []]);
    expect(m.paramUse!.layers).toEqual({ 's0.l0': ['people'], 's1.l0': ['people'], 's2.l0': ['subs'] }); // a layer reads what its scene reads
  });
});

describe('paramSpans', () => {
  it('cuts where what is read changes; a stacked text reads what the text above it reads', () => {
    expect(paramSpans(movie())).toEqual([
      { from: 0, to: 180, params: ['company', 'name'] },
      { from: 180, to: 210, params: ['company'] },
      { from: 210, to: 300, params: ['accent', 'company'] },
    ]);
  });
});

describe('planReusableSegments', () => {
  const spans: ParamSpan[] = [
    { from: 0, to: 180, params: ['company', 'name'] },
    { from: 180, to: 210, params: ['company'] },
    { from: 210, to: 300, params: ['accent', 'company'] },
  ];
  const base = { totalFrames: 300, unit: 3, minFrames: 30 };

  it('keeps spans of at least minFrames apart, cut on the unit', () => {
    expect(planReusableSegments(spans, base)).toEqual([
      { from: 0, to: 180 },
      { from: 180, to: 210 },
      { from: 210, to: 300 },
    ]);
  });

  it('a short span joins the neighbour that reads most of the same params', () => {
    const short: ParamSpan[] = [
      { from: 0, to: 12, params: ['photo'] },
      { from: 12, to: 180, params: ['name', 'photo'] },
      { from: 180, to: 190, params: ['company', 'name', 'photo'] },
      { from: 190, to: 300, params: ['company'] },
    ];
    // 0–12 joins the name span (it adds nothing there); 180–189 (190 snapped) adds one param to the
    // name span but two to the company one, which stays apart and shared by every name.
    expect(planReusableSegments(short, base)).toEqual([
      { from: 0, to: 189 },
      { from: 189, to: 300 },
    ]);
  });

  it('snaps boundaries to the unit; two that land together keep the union', () => {
    expect(planReusableSegments([{ from: 0, to: 61, params: ['a'] }, { from: 61, to: 62, params: ['b'] }, { from: 62, to: 100, params: ['c'] }], { totalFrames: 100, unit: 10, minFrames: 10 })).toEqual([
      { from: 0, to: 60 },
      { from: 60, to: 100 },
    ]);
  });

  it('a watched render starts with a short segment; pieces and maxFrames split the longest', () => {
    expect(planReusableSegments(spans, { ...base, firstFrames: 3 })).toEqual([
      { from: 0, to: 3 },
      { from: 3, to: 180 },
      { from: 180, to: 210 },
      { from: 210, to: 300 },
    ]);
    // The longest is halved until there are enough (the first of equals first).
    expect(planReusableSegments(spans, { ...base, pieces: 5 })).toEqual([
      { from: 0, to: 45 },
      { from: 45, to: 90 },
      { from: 90, to: 180 },
      { from: 180, to: 210 },
      { from: 210, to: 300 },
    ]);
    const capped = planReusableSegments(spans, { ...base, maxFrames: 60 });
    expect(capped.every((r) => r.to - r.from <= 60)).toBe(true);
    expect(capped.map((r) => r.from)).toContain(180);
    expect(capped.map((r) => r.from)).toContain(210);
  });

  it('covers every frame once, whatever the spans (property)', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let run = 0; run < 500; run++) {
      const total = 1 + rand(400);
      const cuts = [...new Set([0, total, ...Array.from({ length: rand(8) }, () => rand(total))])].sort((a, b) => a - b);
      const s: ParamSpan[] = cuts.slice(0, -1).map((from, i) => ({ from, to: cuts[i + 1], params: [String(rand(3))] }));
      const out = planReusableSegments(s, { totalFrames: total, unit: 1 + rand(5), minFrames: rand(60), firstFrames: rand(2) ? 3 : undefined, pieces: 1 + rand(6), maxFrames: rand(2) ? 10 + rand(90) : undefined });
      expect(out[0].from).toBe(0);
      expect(out[out.length - 1].to).toBe(total);
      out.forEach((r: FrameRange, i) => {
        expect(r.to).toBeGreaterThan(r.from);
        if (i > 0) expect(r.from).toBe(out[i - 1].to);
      });
    }
  });
});

describe('planReusedSegments', () => {
  const input = { project: 'ok', movie: 't', templateVersion: 'v1', format: 'mp4' as const, parallel: 2, segmentsPerLane: 1, watched: false };

  it('two tokens differing in the name share every segment after it, and no segment that shows it', () => {
    const a = planReusedSegments(movie(), input);
    const b = planReusedSegments(movie({ name: 'Grace' }), input);
    expect(a.map((s) => s.range)).toEqual(b.map((s) => s.range));
    // 6–7 s (the company alone) is under two seconds: it joins the name's span, which it adds nothing to.
    expect(a.map((s) => s.range)).toEqual([
      { from: 0, to: 210 },
      { from: 210, to: 300 },
    ]);
    a.forEach((s) => expect(s.key).toMatch(/^sg[0-9a-f]{40}$/));
    expect(b.map((s, i) => s.key === a[i].key)).toEqual([false, true]);
    // Another accent: only what is drawn from 7 s changes.
    const c = planReusedSegments(movie({ accent: '#00ff00' }), input);
    expect(c.map((s, i) => s.key === a[i].key)).toEqual([true, false]);
  });

  it('another format, template version or place in the movie is another segment', () => {
    const a = planReusedSegments(movie(), input);
    expect(planReusedSegments(movie(), { ...input, format: 'webm' })[0].key).not.toBe(a[0].key);
    expect(planReusedSegments(movie(), { ...input, templateVersion: 'v2' })[0].key).not.toBe(a[0].key);
    expect(new Set(a.map((s) => s.key)).size).toBe(a.length);
  });
});

describe('planRenderJobs with reuse', () => {
  it('stored segments get no job and are joined from storage; the others are dealt to the lanes with their keys', () => {
    const r: FrameRange[] = [
      { from: 0, to: 30 },
      { from: 30, to: 60 },
      { from: 60, to: 90 },
    ];
    const target = { engine: EngineName.FfmpegComposite, renderKey: 'k9', run: '1a2b3c', project: 'acme', movie: 'intro', params: {}, templateVersion: 'v7' };
    const jobs = planRenderJobs({
      target,
      format: 'mp4',
      profile: { format: 'mp4', streamable: true },
      routingKey: 'default',
      parallel: 2,
      totalFrames: 90,
      fps: 30,
      ranges: r,
      reuse: [
        { key: 'sgA', stored: false },
        { key: 'sgB', stored: true },
        { key: 'sgC', stored: false },
      ],
    });
    if (jobs.kind !== 'distributed') throw new Error('expected a distributed render');
    expect(jobs.lanes.map((l) => ({ name: l.name, jobId: l.jobId, key: (l.payload as { segmentKey?: string }).segmentKey, children: l.children }))).toEqual([
      { name: JobName.RenderSegment, jobId: 'k9-r1a2b3c-0-30', key: 'sgA', children: undefined },
      { name: JobName.RenderSegment, jobId: 'k9-r1a2b3c-60-90', key: 'sgC', children: undefined },
    ]);
    expect(jobs.assembly.payload.segments.map((s) => s.stored)).toEqual([undefined, { key: 'sgB', ext: 'mp4' }, undefined]);
    expect(jobs.assembly.payload.laneRoots).toEqual(['k9-r1a2b3c-0-30', 'k9-r1a2b3c-60-90']);
  });

  it('with reuse, parallel 1 is cut too: one lane renders its segments in order', () => {
    const r: FrameRange[] = [
      { from: 0, to: 30 },
      { from: 30, to: 90 },
    ];
    const target = { engine: EngineName.FfmpegComposite, renderKey: 'k9', run: '1a2b3c', project: 'acme', movie: 'intro', params: {}, templateVersion: 'v7' };
    const base = { target, format: 'mp4' as const, profile: { format: 'mp4' as const, streamable: true }, routingKey: 'default', parallel: 1, totalFrames: 90, fps: 30, ranges: r };
    const jobs = planRenderJobs({ ...base, reuse: [{ key: 'sgA', stored: false }, { key: 'sgB', stored: false }] });
    if (jobs.kind !== 'distributed') throw new Error('expected a distributed render');
    expect(jobs.lanes).toHaveLength(1);
    expect(jobs.lanes[0].jobId).toBe('k9-r1a2b3c-30-90');
    expect(jobs.lanes[0].children?.map((c) => c.jobId)).toEqual(['k9-r1a2b3c-0-30']);
    // Without reuse, parallel 1 stays one job; a gif is never cut.
    expect(planRenderJobs(base).kind).toBe('output');
    expect(planRenderJobs({ ...base, format: 'gif', profile: { format: 'gif' }, reuse: [{ key: 'sgA', stored: false }, { key: 'sgB', stored: false }] }).kind).toBe('output');
  });
});
