// Play of the current params: HLS play mode (/v2/play/<token>.m3u8), whose segments render as
// the player asks for them, so seeking plays at once. hls.js (served by the API) where Media
// Source Extensions exist; native HLS otherwise (Safari); the progressive mp4 as a last resort.

let detachCurrent = () => {};
let hlsLoading;

/** hls.js, loaded once from this origin. */
function loadHls() {
  hlsLoading ??= new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = '/v2/play/hls.min.js';
    script.onload = () => resolve(window.Hls);
    script.onerror = () => reject(new Error('hls.js could not be loaded'));
    document.head.append(script);
  });
  return hlsLoading;
}

/** Points `video` at the token's play presentation; resolves when the source is set. */
export async function attachSource(video, token) {
  detachCurrent();
  const playlist = `/v2/play/${encodeURIComponent(token)}.m3u8`;
  const Hls = window.MediaSource ? await loadHls().catch(() => undefined) : undefined;
  if (Hls?.isSupported()) {
    const hls = new Hls();
    hls.loadSource(playlist);
    hls.attachMedia(video);
    detachCurrent = () => {
      hls.destroy();
      video.removeAttribute('src');
      video.load();
    };
    return;
  }
  video.src = video.canPlayType('application/vnd.apple.mpegurl') ? playlist : `/v2/get/${encodeURIComponent(token)}.mp4`;
  detachCurrent = () => {
    video.removeAttribute('src');
    video.load();
  };
}

export function detachSource() {
  detachCurrent();
  detachCurrent = () => {};
}
