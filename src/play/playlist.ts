/** One media segment of a play-mode presentation, as the playlist lists it. */
export interface PlaylistSegment {
  /** Its length in frames. */
  frames: number;
  /** Its URI, relative to the playlist. */
  uri: string;
}

/**
 * The HLS media playlist of a whole movie (pure): fMP4 (version 7), VOD and complete from the
 * start, so a player can seek anywhere before a frame is rendered. Durations are frames / fps
 * to 6 decimals; the target duration is the longest segment, rounded up.
 */
export function mediaPlaylist(segments: PlaylistSegment[], fps: number, initUri: string): string {
  if (segments.length === 0) throw new Error('a playlist needs at least one segment');
  const seconds = segments.map((s) => s.frames / fps);
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${Math.ceil(Math.max(...seconds) - 1e-9)}`,
    '#EXT-X-PLAYLIST-TYPE:VOD',
    '#EXT-X-MEDIA-SEQUENCE:0',
    '#EXT-X-INDEPENDENT-SEGMENTS',
    `#EXT-X-MAP:URI="${initUri}"`,
  ];
  segments.forEach((s, i) => lines.push(`#EXTINF:${seconds[i].toFixed(6)},`, s.uri));
  lines.push('#EXT-X-ENDLIST', '');
  return lines.join('\n');
}

/** A byte range of one file, as an HLS segment. */
export interface ByteRangeSegment {
  offset: number;
  size: number;
  seconds: number;
}

/** The HLS media playlist of byte ranges into one fragmented file (pure): play mode's sound. */
export function byteRangePlaylist(uri: string, initSize: number, segments: ByteRangeSegment[]): string {
  if (segments.length === 0) throw new Error('a playlist needs at least one segment');
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${Math.ceil(Math.max(...segments.map((s) => s.seconds)) - 1e-9)}`,
    '#EXT-X-PLAYLIST-TYPE:VOD',
    '#EXT-X-MEDIA-SEQUENCE:0',
    '#EXT-X-INDEPENDENT-SEGMENTS',
    `#EXT-X-MAP:URI="${uri}",BYTERANGE="${initSize}@0"`,
  ];
  for (const s of segments) lines.push(`#EXTINF:${s.seconds.toFixed(6)},`, `#EXT-X-BYTERANGE:${s.size}@${s.offset}`, uri);
  lines.push('#EXT-X-ENDLIST', '');
  return lines.join('\n');
}

/**
 * The master playlist of a movie with sound (pure): the video playlist with the sound as an
 * alternate audio rendition. `bandwidth` is an estimate (bits per second): players only rank
 * variants by it, and there is one.
 */
export function masterPlaylist(video: { uri: string; width: number; height: number; fps: number; bandwidth: number }, audioUri: string): string {
  return [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    '#EXT-X-INDEPENDENT-SEGMENTS',
    `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="sound",NAME="Sound",DEFAULT=YES,AUTOSELECT=YES,URI="${audioUri}"`,
    `#EXT-X-STREAM-INF:BANDWIDTH=${Math.round(video.bandwidth)},RESOLUTION=${video.width}x${video.height},FRAME-RATE=${video.fps.toFixed(3)},AUDIO="sound"`,
    video.uri,
    '',
  ].join('\n');
}
