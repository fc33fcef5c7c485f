/**
 * Every output format Montage makes, in one exhaustive table: what it is, how it travels
 * (streamed while it renders or sent once stored), whether its frames can be cut into
 * segments on several nodes, and how those segments are written and joined. The request
 * parser, the planner, the render nodes and the delivery all read this table; nothing else
 * decides a rule by format name.
 */
export const OUTPUT_FORMATS = ['mp4', 'webm', 'gif', 'png', 'jpg', 'webp', 'vtt'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
/** Formats whose bytes come from a render; the others (the captions sidecar) are made from the resolved movie. */
export type RenderedFormat = Exclude<OutputFormat, 'vtt'>;
export const RENDERED_FORMATS = ['mp4', 'webm', 'gif', 'png', 'jpg', 'webp'] as const satisfies readonly RenderedFormat[];

/** How a growing output is cut into whole pieces that can be published one by one. */
export type FragmentKind = 'mp4-fragments' | 'webm-clusters' | 'ivf-frames';

export interface OutputFormatSpec {
  contentType: string;
  /** One frame (stills), a moving picture, or the movie's captions as text (made without a render). */
  kind: 'still' | 'video' | 'captions';
  /** Written so that it plays while it is written, and sent to viewers fragment by fragment. */
  streamable: boolean;
  /** Its frames can be rendered as segments on several nodes (`parallel` > 1) and joined. */
  distributable: boolean;
  /** How the video-only segments of a distributed render are written, and what joins them. */
  segment?: { container: 'mp4' | 'ivf'; fragments: FragmentKind; joiner: 'fmp4' | 'ivf' };
  /** How the streamable form is cut into fragments while it is written. */
  fragments?: FragmentKind;
  /** Encoder of the picture (and of the sound, when the format has one); none for what is not rendered. */
  encoder?: { video: string; audio?: string };
  /** The streamable form is remuxed (no re-encode) into a regular file before it is stored. */
  remuxToStore: boolean;
}

export const OUTPUT_FORMAT_TABLE: { readonly [F in OutputFormat]: OutputFormatSpec } = {
  mp4: {
    contentType: 'video/mp4',
    kind: 'video',
    streamable: true,
    distributable: true,
    segment: { container: 'mp4', fragments: 'mp4-fragments', joiner: 'fmp4' },
    fragments: 'mp4-fragments',
    encoder: { video: 'libx264', audio: 'aac' },
    remuxToStore: true,
  },
  webm: {
    contentType: 'video/webm',
    kind: 'video',
    streamable: true,
    distributable: true,
    segment: { container: 'ivf', fragments: 'ivf-frames', joiner: 'ivf' },
    fragments: 'webm-clusters',
    encoder: { video: 'libvpx-vp9', audio: 'libopus' },
    remuxToStore: true,
  },
  // A palette GIF is written only once every frame has been seen: nothing to stream or cut.
  gif: { contentType: 'image/gif', kind: 'video', streamable: false, distributable: false, encoder: { video: 'gif' }, remuxToStore: false },
  png: { contentType: 'image/png', kind: 'still', streamable: false, distributable: false, encoder: { video: 'png' }, remuxToStore: false },
  jpg: { contentType: 'image/jpeg', kind: 'still', streamable: false, distributable: false, encoder: { video: 'mozjpeg (sharp)' }, remuxToStore: false },
  webp: { contentType: 'image/webp', kind: 'still', streamable: false, distributable: false, encoder: { video: 'libwebp (sharp)' }, remuxToStore: false },
  // The caption layers' cues as WebVTT, computed from the resolved movie: no render, nothing stored.
  vtt: { contentType: 'text/vtt; charset=utf-8', kind: 'captions', streamable: false, distributable: false, remuxToStore: false },
};

export const isOutputFormat = (f: string): f is OutputFormat => Object.prototype.hasOwnProperty.call(OUTPUT_FORMAT_TABLE, f);
export const formatSpec = (f: OutputFormat): OutputFormatSpec => OUTPUT_FORMAT_TABLE[f];
export const isRenderedFormat = (f: OutputFormat): f is RenderedFormat => OUTPUT_FORMAT_TABLE[f].kind !== 'captions';
export const isStillFormat = (f: string): boolean => isOutputFormat(f) && OUTPUT_FORMAT_TABLE[f].kind === 'still';
export const isStreamable = (f: OutputFormat): boolean => OUTPUT_FORMAT_TABLE[f].streamable;
export const contentTypeOf = (f: OutputFormat): string => OUTPUT_FORMAT_TABLE[f].contentType;
