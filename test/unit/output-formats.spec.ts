import {
  contentTypeOf,
  formatSpec,
  isOutputFormat,
  isRenderedFormat,
  isStillFormat,
  isStreamable,
  OUTPUT_FORMAT_TABLE,
  OUTPUT_FORMATS,
  RENDERED_FORMATS,
  type FragmentKind,
} from '../../src/formats/output-formats';

const FRAGMENT_KINDS: FragmentKind[] = ['mp4-fragments', 'webm-clusters', 'ivf-frames'];

describe('the output format table', () => {
  it('has exactly one entry per format of OUTPUT_FORMATS', () => {
    expect(Object.keys(OUTPUT_FORMAT_TABLE).sort()).toEqual([...OUTPUT_FORMATS].sort());
    expect(OUTPUT_FORMATS).toEqual(['mp4', 'webm', 'gif', 'png', 'jpg', 'webp', 'vtt']);
    expect([...RENDERED_FORMATS]).toEqual(OUTPUT_FORMATS.filter(isRenderedFormat));
  });

  it.each(OUTPUT_FORMATS)('%s is consistent', (format) => {
    const spec = formatSpec(format);
    expect(spec).toBe(OUTPUT_FORMAT_TABLE[format]);
    // Streamable outputs say how they are cut; only they are cut.
    if (spec.streamable) expect(FRAGMENT_KINDS).toContain(spec.fragments);
    else expect(spec.fragments).toBeUndefined();
    // Distributable outputs say how segments are written and joined; only they have segments.
    if (spec.distributable) {
      expect(spec.segment).toBeDefined();
      expect(FRAGMENT_KINDS).toContain(spec.segment!.fragments);
      // A segment's container decides its fragments and its joiner.
      expect(spec.segment).toEqual(spec.segment!.container === 'mp4' ? { container: 'mp4', fragments: 'mp4-fragments', joiner: 'fmp4' } : { container: 'ivf', fragments: 'ivf-frames', joiner: 'ivf' });
      expect(spec.streamable).toBe(true); // segments are joined into a stream as they come
    } else {
      expect(spec.segment).toBeUndefined();
    }
    if (spec.kind === 'still') {
      expect(spec.streamable).toBe(false);
      expect(spec.distributable).toBe(false);
      expect(spec.encoder?.audio).toBeUndefined();
    }
    expect(spec.remuxToStore).toBe(spec.streamable);
    if (spec.kind === 'captions') {
      // Made from the resolved movie: nothing encodes it, nothing streams or splits it.
      expect([spec.encoder, spec.streamable, spec.distributable, spec.contentType]).toEqual([undefined, false, false, 'text/vtt; charset=utf-8']);
      expect(isRenderedFormat(format)).toBe(false);
      return;
    }
    expect(isRenderedFormat(format)).toBe(true);
    expect(spec.contentType).toMatch(/^(video|image)\/[a-z0-9]+$/);
    expect(spec.contentType.startsWith(spec.kind === 'still' ? 'image/' : format === 'gif' ? 'image/' : 'video/')).toBe(true);
    expect(spec.encoder!.video.length).toBeGreaterThan(0);
  });

  it('says what each format is', () => {
    const summary = Object.fromEntries(
      OUTPUT_FORMATS.map((f) => {
        const s = formatSpec(f);
        return [f, [s.kind, s.streamable, s.distributable, s.fragments ?? null, s.segment?.container ?? null, s.contentType]];
      }),
    );
    expect(summary).toEqual({
      mp4: ['video', true, true, 'mp4-fragments', 'mp4', 'video/mp4'],
      webm: ['video', true, true, 'webm-clusters', 'ivf', 'video/webm'],
      gif: ['video', false, false, null, null, 'image/gif'],
      png: ['still', false, false, null, null, 'image/png'],
      jpg: ['still', false, false, null, null, 'image/jpeg'],
      webp: ['still', false, false, null, null, 'image/webp'],
      vtt: ['captions', false, false, null, null, 'text/vtt; charset=utf-8'],
    });
  });

  it('the helpers read the table', () => {
    for (const f of OUTPUT_FORMATS) {
      expect(isOutputFormat(f)).toBe(true);
      expect(isStreamable(f)).toBe(OUTPUT_FORMAT_TABLE[f].streamable);
      expect(isStillFormat(f)).toBe(OUTPUT_FORMAT_TABLE[f].kind === 'still');
      expect(contentTypeOf(f)).toBe(OUTPUT_FORMAT_TABLE[f].contentType);
    }
    for (const notAFormat of ['mov', 'MP4', '', 'toString', 'constructor', '__proto__', 'hasOwnProperty']) {
      expect(isOutputFormat(notAFormat)).toBe(false);
      expect(isStillFormat(notAFormat)).toBe(false);
    }
  });
});
