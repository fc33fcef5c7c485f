// Play of the current params. The one place that decides what a <video> plays: swapping the
// progressive mp4 for HLS play mode (/v2/play/<token>.m3u8 through hls.js) changes this file only.

let detachCurrent = () => {};

/** Points `video` at the token's stream; returns when the source is set. */
export function attachSource(video, token) {
  detachCurrent();
  video.src = `/v2/get/${encodeURIComponent(token)}.mp4`;
  detachCurrent = () => {
    video.removeAttribute('src');
    video.load();
  };
}

export function detachSource() {
  detachCurrent();
  detachCurrent = () => {};
}
