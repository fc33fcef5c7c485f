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
