import { cueFromSubtitle, cuesFromWords, cueText } from '../../src/captions/caption-cues';
import { captionCues, placeCues } from '../../src/captions/caption-source';
import { captionStills } from '../../src/captions/caption-stills';
import { parseSubtitles, SubtitleError } from '../../src/captions/subtitle-parser';
import { movieCaptionCues, stamp, toWebVtt } from '../../src/captions/webvtt';
import { buildRenderArgs } from '../../src/compiler/ffmpeg-args';
import type { PlannedLayer, RenderPlan } from '../../src/compiler/render-plan';
import type { ResolvedMovie } from '../../src/compiler/resolve';
import { ffconcatList } from '../../src/compiler/still-sequence';

function lineOf(fn: () => unknown): { line: number; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof SubtitleError) return { line: err.line, message: err.message };
    throw err;
  }
  throw new Error('no error');
}

describe('parseSubtitles', () => {
  it('SRT with a BOM, CRLF, no final blank line, tags and entities', () => {
    const srt = '\uFEFF1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>Hello</i> &amp; <b>welcome</b>\r\n\r\n2\r\n00:00:03,000 --> 00:00:04,000\r\nline one\r\n{\\an8}line two';
    expect(parseSubtitles(srt)).toEqual([
      { start: 1, end: 2.5, text: 'Hello & welcome' },
      { start: 3, end: 4, text: 'line one\nline two' },
    ]);
  });

  it('WebVTT: header, NOTE/STYLE blocks, cue ids, settings, short times, voice and timestamp tags', () => {
    const vtt = [
      'WEBVTT - a title',
      'Kind: captions',
      'Language: en',
      '',
      'NOTE a comment',
      'over two lines',
      '',
      'STYLE',
      '::cue { color: red }',
      '',
      'intro',
      '00:01.000 --> 00:02.000 align:start position:10%',
      '<v Roger>Hi <00:00:01.500>there',
      '',
      '01:00:00.000 --> 01:00:01.5',
      'late',
    ].join('\n');
    expect(parseSubtitles(vtt)).toEqual([
      { start: 1, end: 2, text: 'Hi there' },
      { start: 3600, end: 3601.5, text: 'late' },
    ]);
  });

  it('hostile text is kept as text: markup, filter syntax, control characters, emoji and RTL', () => {
    const srt = "1\n00:00:00,000 --> 00:00:01,000\n[0:v]drawtext=text='x';\u0007 \u202eטקסט 👍🏽 &lt;script&gt;\u0000";
    expect(parseSubtitles(srt)[0].text).toBe("[0:v]drawtext=text='x'; \u202eטקסט 👍🏽 <script>");
  });

  it('bad cues are refused with their line', () => {
    expect(lineOf(() => parseSubtitles('1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:05,000 -> 00:00:06,000\nbad'))).toEqual({
      line: 5,
      message: expect.stringContaining('expected a cue timing'),
    });
    expect(lineOf(() => parseSubtitles('\n\n1\n00:00:03,000 --> 00:00:02,000\nbackwards')).line).toBe(4);
    expect(lineOf(() => parseSubtitles('1\n00:00:61,000 --> 00:01:02,000\nsixty-one seconds')).message).toContain('is not a time');
    expect(lineOf(() => parseSubtitles('1\nabc --> 00:00:02,000\nx')).line).toBe(2);
    expect(lineOf(() => parseSubtitles('1\n00:00:01,000 -->\nx')).message).toContain('"" is not a time');
  });

  it('is bounded: 1 MB of text, 5,000 cues', () => {
    expect(lineOf(() => parseSubtitles('x'.repeat(1024 * 1024 + 1))).message).toContain('over 1024 KiB');
    const many = Array.from({ length: 5001 }, (_, i) => `${i + 1}\n00:00:01,000 --> 00:00:02,000\nc`).join('\n\n');
    expect(lineOf(() => parseSubtitles(many))).toEqual({ line: 5000 * 4 + 2, message: 'more than 5000 cues' });
  });

  it('timings without spaces around the arrow, and 1–2 digit fractions', () => {
    expect(parseSubtitles('1\n00:00:01,5-->00:00:02,25\nx')).toEqual([{ start: 1.5, end: 2.25, text: 'x' }]);
  });

  it('cues come out in time order; empty cues are dropped', () => {
    const srt = '2\n00:00:05,000 --> 00:00:06,000\nsecond\n\n1\n00:00:01,000 --> 00:00:02,000\nfirst\n\n3\n00:00:07,000 --> 00:00:08,000\n<i></i>';
    expect(parseSubtitles(srt).map((c) => c.text)).toEqual(['first', 'second']);
  });
});

describe('cues', () => {
  const w = (text: string, start: number, end: number) => ({ text, start, end });

  it('words → cues of at most maxChars per line and `lines` lines, cut at pauses', () => {
    const words = [w('one', 0, 0.3), w('two', 0.3, 0.6), w('three', 0.6, 1), w('four', 1, 1.3), w('five', 1.3, 1.6), w('six', 3, 3.4)];
    const cues = cuesFromWords(words, { maxChars: 9, lines: 2, pause: 0.7 });
    expect(cues.map(cueText)).toEqual(['one two\nthree', 'four five', 'six']);
    expect(cues.map((c) => [c.start, c.end])).toEqual([
      [0, 1],
      [1, 1.6],
      [3, 3.4],
    ]);
  });

  it('a word longer than a line gets a line of its own; emoji count as one character', () => {
    const cues = cuesFromWords([w('a', 0, 1), w('extraordinarily', 1, 2), w('👍🏽👍🏽', 2, 3)], { maxChars: 5, lines: 3, pause: 1 });
    expect(cues.map(cueText)).toEqual(['a\nextraordinarily\n👍🏽👍🏽']);
  });

  it('an SRT cue is split into words timed by their length in characters', () => {
    const cue = cueFromSubtitle({ start: 10, end: 12, text: 'aaa b\ncc' }, 32);
    // 'aaa ' 'b ' 'cc ' = 4 + 2 + 3 = 9 characters over 2 s
    const words = cue.lines.flat();
    expect(cue.lines.map((l) => l.map((x) => x.text))).toEqual([['aaa', 'b'], ['cc']]);
    expect(words[0]).toEqual({ text: 'aaa', start: 10, end: 10 + 8 / 9 });
    expect(words[1].start).toBe(words[0].end);
    expect(words[2]).toMatchObject({ text: 'cc', end: 12 });
  });

  it('long SRT lines are wrapped at maxChars', () => {
    expect(cueText(cueFromSubtitle({ start: 0, end: 1, text: 'the quick brown fox jumps' }, 10))).toBe('the quick\nbrown fox\njumps');
  });

  it('a word list param: bad items are named by their position', () => {
    const layout = { maxChars: 32, lines: 2, pause: 0.7 };
    expect(lineOf(() => captionCues([{ text: 'ok', start: 0, end: 1 }, { text: 'x', start: 2, end: 1 }], layout))).toEqual({ line: 2, message: expect.stringContaining('word 2') });
    expect(lineOf(() => captionCues([null], layout)).line).toBe(1);
    expect(lineOf(() => captionCues(42, layout)).message).toContain('expected SRT or WebVTT');
    expect(captionCues([{ text: ' <b>hi</b>  there ', start: 0, end: 1 }], layout).map(cueText)).toEqual(['hi there']);
    expect(lineOf(() => captionCues(Array.from({ length: 5001 }, (_, i) => ({ text: 'w', start: i, end: i + 1 })), layout)).message).toBe('more than 5000 words');
    expect(lineOf(() => captionCues(`1\n00:00:00,000 --> 00:00:01,000\n${'w '.repeat(5001)}`, layout)).message).toBe('more than 5000 words');
  });

  it('cues move to movie time and are cut to the layer', () => {
    const cues = captionCues('1\n00:00:00,000 --> 00:00:01,000\na\n\n2\n00:00:02,000 --> 00:00:05,000\nb\n\n3\n00:00:09,000 --> 00:00:10,000\nc', { maxChars: 32, lines: 2, pause: 1 });
    const placed = placeCues(cues, 1, 1.5, 4);
    expect(placed.map((c) => [cueText(c), c.start, c.end])).toEqual([
      ['a', 1.5, 2],
      ['b', 3, 4],
    ]);
  });
});

describe('captionStills', () => {
  const cue = (start: number, end: number, words: Array<[string, number, number]>) => ({
    start,
    end,
    lines: [words.map(([text, s, e]) => ({ text, start: s, end: e }))],
  });

  it('without highlight: one still per cue, cut where the next cue starts', () => {
    expect(captionStills([cue(0, 1, [['a', 0, 1]]), cue(0.5, 2, [['b', 0.5, 2]])], 10, false)).toEqual([
      { cue: 0, startFrame: 0, endFrame: 5 },
      { cue: 1, startFrame: 5, endFrame: 20 },
    ]);
  });

  it('with highlight: a still per word, the plain cue in the pauses between words', () => {
    const stills = captionStills([cue(1, 3, [['a', 1, 1.5], ['b', 2, 2.5]])], 10, true);
    expect(stills).toEqual([
      { cue: 0, word: { line: 0, word: 0 }, startFrame: 10, endFrame: 15 },
      { cue: 0, startFrame: 15, endFrame: 20 },
      { cue: 0, word: { line: 0, word: 1 }, startFrame: 20, endFrame: 25 },
      { cue: 0, startFrame: 25, endFrame: 30 },
    ]);
  });
});

describe('ffconcatList', () => {
  it('gaps are the blank still, every file is read at the movie fps, a blank closes the list', () => {
    const text = ffconcatList(
      [
        { path: '/c/b.png', startFrame: 30, endFrame: 45 },
        { path: '/c/a.png', startFrame: 12, endFrame: 20 },
      ],
      { startFrame: 10, endFrame: 60 },
      30,
      '/c/blank.png',
    );
    expect(text).toBe(
      [
        'ffconcat version 1.0',
        "file '/c/blank.png'", 'option framerate 30', 'duration 0.066667',
        "file '/c/a.png'", 'option framerate 30', 'duration 0.266667',
        "file '/c/blank.png'", 'option framerate 30', 'duration 0.333333',
        "file '/c/b.png'", 'option framerate 30', 'duration 0.5',
        "file '/c/blank.png'", 'option framerate 30', 'duration 0.5',
        "file '/c/blank.png'", 'option framerate 30',
        '',
      ].join('\n'),
    );
  });

  it('overlaps go to the later still; stills outside the range go; quotes in paths are escaped', () => {
    const text = ffconcatList(
      [
        { path: "/c/it's.png", startFrame: 0, endFrame: 20 },
        { path: '/c/b.png', startFrame: 10, endFrame: 30 },
        { path: '/c/late.png', startFrame: 50, endFrame: 60 },
      ],
      { startFrame: 0, endFrame: 30 },
      10,
      '/c/blank.png',
    );
    expect(text.split('\n').filter((l) => l.startsWith('file') || l.startsWith('duration'))).toEqual([
      "file '/c/it'\\''s.png'", 'duration 1',
      "file '/c/b.png'", 'duration 2',
      "file '/c/blank.png'",
    ]);
    expect(() => ffconcatList([{ path: '/c/a\nfile /etc/passwd', startFrame: 0, endFrame: 1 }], { startFrame: 0, endFrame: 1 }, 10, '/b.png')).toThrow('control character');
  });
});

describe('the sequence source', () => {
  const layer = (over: Partial<PlannedLayer>): PlannedLayer => ({
    id: 's0.l0',
    startFrame: 10,
    endFrame: 60,
    x: 40,
    y: 100,
    width: 240,
    height: 60,
    opacity: 1,
    source: { kind: 'sequence', list: '/c/list.ffconcat', startFrame: 10 },
    fit: 'fill',
    animIn: [],
    animOut: [],
    ...over,
  });
  const plan = (l: PlannedLayer): RenderPlan => ({
    templateId: 'p/m',
    version: 'v1',
    width: 320,
    height: 180,
    fps: 30,
    totalFrames: 60,
    background: '#000000',
    posterFrame: 30,
    scenes: [{ index: 0, startFrame: 0, endFrame: 60, background: '#000000', layers: [l] }],
    audio: [],
  });

  it('one concat input, converted once per still, cut by frame number from the list start, absolute timestamps', () => {
    const args = buildRenderArgs(plan(layer({})), { from: 0, to: 60 }, { format: 'mp4', videoOnly: true }, 'o.mp4');
    expect(args.slice(args.indexOf('-f'), args.indexOf('-f') + 6)).toEqual(['-f', 'concat', '-safe', '0', '-i', '/c/list.ffconcat']);
    const graph = args[args.indexOf('-filter_complex') + 1];
    expect(graph).toContain(
      '[0:v]scale=out_color_matrix=bt709:out_range=tv,format=yuva420p,fps=30,trim=start_frame=0:end_frame=50,settb=expr=1/30,setpts=N+10[l1];[bg0][l1]overlay=x=\'40\':y=\'100\':eof_action=pass[o2]',
    );
  });

  it('a range skips the frames before it: its frames are the same frames as in the whole render', () => {
    const args = buildRenderArgs(plan(layer({})), { from: 30, to: 45 }, { format: 'mp4', videoOnly: true }, 'o.mp4');
    const graph = args[args.indexOf('-filter_complex') + 1];
    expect(graph).toContain('[0:v]scale=out_color_matrix=bt709:out_range=tv,format=yuva420p,fps=30,trim=start_frame=20:end_frame=35,settb=expr=1/30,setpts=N+30[l1]');
    expect(args.filter((a) => a === '-i')).toHaveLength(1);
  });
});

describe('WebVTT', () => {
  it('cues of every caption layer at movie time, escaped, in order', () => {
    const caption = (start: number, end: number, text: string) => ({ start, end, lines: [text.split(' ').map((t) => ({ text: t, start, end }))] });
    const movie = {
      scenes: [
        { layers: [{ captions: [caption(62.5, 63, 'b <i> --> & c')] }, { spec: {} }] },
        { layers: [{ captions: [caption(1, 2.25, 'a')] }] },
      ],
    } as unknown as ResolvedMovie;
    expect(toWebVtt(movieCaptionCues(movie))).toBe('WEBVTT\n\n00:00:01.000 --> 00:00:02.250\na\n\n00:01:02.500 --> 00:01:03.000\nb &lt;i&gt; --&gt; &amp; c\n');
    expect(toWebVtt([])).toBe('WEBVTT\n\n');
    expect(stamp(3723.4567)).toBe('01:02:03.457');
  });
});
