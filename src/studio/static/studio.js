// The designer studio: sign in, pick a movie, edit its params, see the frame, play, embed.
import { Api, ApiError } from './api.js';
import { renderForm } from './form.js';
import { attachSource, detachSource } from './player.js';

const $ = (id) => document.getElementById(id);
const STORE = sessionStorage; // the key lives for this tab only
/**
 * The first change after a quiet spell of this long is previewed at once; changes that follow
 * it more closely (typing) wait until they pause this long.
 */
const DEBOUNCE_MS = 150;

const state = {
  api: null,
  movie: null, // StudioMovie from the API
  form: null,
  token: null,
  frame: null, // null: the poster frame
  timeline: null,
  previewUrl: null,
  inflight: null, // AbortController of the preview being made
  events: null,
  asked: null, // the movie and params last previewed (or about to be)
};

function say(id, text) {
  $(id).textContent = text;
}

async function signIn(project, key) {
  const api = new Api(project, key);
  say('app-status', 'Signing in…');
  try {
    const { movies } = await api.movies();
    STORE.setItem('montage.project', project);
    STORE.setItem('montage.key', key);
    state.api = api;
    $('signin').hidden = true;
    $('session').hidden = false;
    say('session-project', `Project ${project}`);
    $('studio').hidden = false;
    say('app-status', `Signed in to ${project}: ${movies.length} movies.`);
    showMovies(movies);
    listenForChanges();
    const wanted = new URLSearchParams(location.hash.slice(1)).get('movie');
    const first = movies.find((m) => m.name === wanted) ?? movies[0];
    if (first) await openMovie(first.name);
  } catch (err) {
    say('app-status', err instanceof ApiError ? `Sign-in failed: ${err.message}` : `Sign-in failed: ${String(err)}`);
    $('key').focus();
  }
}

function signOut() {
  STORE.removeItem('montage.key');
  state.events?.abort();
  state.inflight?.abort();
  state.api = null;
  $('studio').hidden = true;
  $('session').hidden = true;
  $('signin').hidden = false;
  $('key').value = '';
  say('app-status', 'Signed out.');
  $('key').focus();
}

function showMovies(movies) {
  const list = $('movie-list');
  list.replaceChildren(
    ...movies.map((m) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = m.title === m.name ? m.name : `${m.title} (${m.name})`;
      button.dataset.movie = m.name;
      button.addEventListener('click', () => openMovie(m.name));
      const li = document.createElement('li');
      li.append(button);
      return li;
    }),
  );
}

async function openMovie(name, keepValues = false) {
  const values = keepValues && state.form ? state.form.collect() : null;
  let movie;
  try {
    movie = await state.api.movie(name);
  } catch (err) {
    say('app-status', `Cannot open ${name}: ${err.message}`);
    return;
  }
  if (!keepValues) {
    state.frame = null;
    state.token = null;
    hidePlayer();
  }
  state.movie = movie;
  history.replaceState(null, '', `#movie=${encodeURIComponent(name)}`);
  for (const b of document.querySelectorAll('#movie-list button')) b.setAttribute('aria-current', String(b.dataset.movie === name));
  say('movie-title', movie.title === name ? name : `${movie.title} (${name})`);
  showProblems(movie.problems);
  const form = $('params-form');
  form.dataset.movie = name;
  form.dataset.version = movie.version ?? '';
  if (!movie.fields) {
    form.replaceChildren();
    state.form = null;
    say('preview-status', 'The template does not load: see the template check.');
    return;
  }
  state.form = renderForm(form, movie.fields, values, schedule);
  await preview();
}

function showProblems(problems) {
  const list = $('problems');
  if (!problems.length) {
    const li = document.createElement('li');
    li.textContent = 'No problems.';
    list.replaceChildren(li);
    return;
  }
  list.replaceChildren(
    ...problems.map((p) => {
      const li = document.createElement('li');
      const code = document.createElement('code');
      code.textContent = p.field;
      li.append(code, ` ${p.message}`);
      return li;
    }),
  );
}

/**
 * A debounce that fires on the leading edge: `work` runs at once after a quiet spell, else
 * (a burst of changes) once the changes pause; each call supersedes a pending one.
 */
function debouncer() {
  let last = -Infinity;
  let timer = 0;
  return (work) => {
    const now = performance.now();
    const quiet = now - last >= DEBOUNCE_MS;
    last = now;
    clearTimeout(timer);
    if (quiet) work();
    else timer = setTimeout(work, DEBOUNCE_MS);
  };
}
const paramsChanged = debouncer();
const frameChanged = debouncer();

function schedule() {
  // One edit can fire `input` and then `change`: the same params are previewed once.
  const asked = JSON.stringify([state.movie?.name, state.form?.collect()]);
  if (asked === state.asked) return;
  state.asked = asked;
  paramsChanged(() => void preview());
}

/** A token for the current params, then its frame: the previous attempt is cancelled first. */
async function preview() {
  if (!state.form) return;
  state.asked = JSON.stringify([state.movie.name, state.form.collect()]);
  state.inflight?.abort();
  const inflight = new AbortController();
  state.inflight = inflight;
  const { signal } = inflight;
  const movie = state.movie.name;
  const params = state.form.collect();
  say('preview-status', 'Rendering preview…');
  let token;
  try {
    ({ token } = await state.api.token(movie, params, signal));
  } catch (err) {
    if (signal.aborted) return;
    if (err instanceof ApiError && err.status === 400) {
      const unplaced = state.form.showErrors(err.details);
      say('general-errors', unplaced.map((d) => `${d.field}: ${d.message}`).join('\n'));
      say('preview-status', `Not rendered: ${err.details.length || 1} problem(s) with the params.`);
    } else {
      say('general-errors', err.message);
      say('preview-status', 'Not rendered.');
    }
    return;
  }
  state.form.clearErrors();
  say('general-errors', '');
  state.token = token;
  // The timeline and the snippets follow; the picture does not wait for them.
  void refreshTimeline(movie, params, signal);
  void refreshEmbed(movie, params, token, signal);
  await showFrame(signal);
}

async function showFrame(signal) {
  const token = state.token;
  if (!token) return;
  const started = performance.now();
  try {
    const blob = await state.api.frame(token, state.frame, signal);
    const url = URL.createObjectURL(blob);
    const img = $('preview');
    img.src = url;
    await img.decode().catch(() => undefined);
    if (signal.aborted) {
      URL.revokeObjectURL(url);
      return;
    }
    if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
    state.previewUrl = url;
    img.dataset.token = token;
    img.dataset.frame = state.frame === null ? 'poster' : String(state.frame);
    img.alt = `Preview of ${state.movie.name}, ${state.frame === null ? 'poster frame' : `frame ${state.frame}`}`;
    say('preview-status', `Preview of ${state.frame === null ? 'the poster frame' : `frame ${state.frame}`} (${Math.round(performance.now() - started)} ms).`);
  } catch (err) {
    if (signal.aborted) return;
    say('preview-status', `Preview failed: ${err.message}`);
  }
}

async function refreshTimeline(movie, params, signal) {
  try {
    state.timeline = await state.api.timeline(movie, params, signal);
  } catch {
    return;
  }
  if (signal.aborted) return;
  const t = state.timeline;
  const scrubber = $('scrubber');
  scrubber.max = String(Math.max(0, t.totalFrames - 1));
  scrubber.value = String(state.frame ?? t.posterFrame);
  scrubber.setAttribute('aria-valuetext', frameText(Number(scrubber.value)));
  $('frame-out').value = state.frame === null ? `poster (${t.posterFrame})` : String(state.frame);
  drawTimeline(t);
}

function frameText(frame) {
  const fps = state.timeline?.fps ?? 30;
  return `frame ${frame}, ${(frame / fps).toFixed(2)} s`;
}

function drawTimeline(t) {
  const box = $('timeline');
  const pct = (f) => `${(100 * f) / Math.max(1, t.totalFrames)}%`;
  const bar = (cls, from, to, label, title) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `seg ${cls}`;
    b.style.left = pct(from);
    b.style.width = pct(to - from);
    b.textContent = label;
    b.title = title;
    b.setAttribute('aria-label', `${title}: go to frame ${from}`);
    b.addEventListener('click', () => seek(from));
    return b;
  };
  const rows = [];
  const sceneRow = document.createElement('div');
  sceneRow.className = 'track';
  for (const s of t.scenes) sceneRow.append(bar('scene', s.startFrame, s.endFrame, s.name, `Scene ${s.name}, frames ${s.startFrame}–${s.endFrame - 1}`));
  rows.push(sceneRow);
  for (const s of t.scenes) {
    for (const l of s.layers) {
      const row = document.createElement('div');
      row.className = 'track';
      row.dataset.layer = l.id;
      row.append(bar('layer', l.startFrame, l.endFrame, `${l.id} ${l.label}`, `Layer ${l.id} (${l.type}) ${l.label}, frames ${l.startFrame}–${l.endFrame - 1}`));
      rows.push(row);
    }
  }
  const head = document.createElement('div');
  head.className = 'playhead';
  head.style.left = pct(state.frame ?? t.posterFrame);
  rows.push(head);
  box.replaceChildren(...rows);
}

function seek(frame) {
  state.frame = frame;
  $('scrubber').value = String(frame);
  afterSeek();
}

function afterSeek() {
  const frame = state.frame;
  $('frame-out').value = frame === null ? 'poster' : String(frame);
  $('scrubber').setAttribute('aria-valuetext', frameText(frame ?? state.timeline?.posterFrame ?? 0));
  if (state.timeline) drawTimeline(state.timeline);
  frameChanged(() => {
    state.inflight?.abort();
    state.inflight = new AbortController();
    void showFrame(state.inflight.signal);
  });
}

async function refreshEmbed(movie, params, token, signal) {
  try {
    const s = await state.api.embed(movie, params, token, signal);
    if (signal.aborted) return;
    $('snippet-curl').value = s.curl;
    $('snippet-video').value = s.video;
    $('snippet-signed').value = s.signedUrl;
    $('snippet-signed-video').value = s.signedVideo;
  } catch {
    // The token POST already showed what is wrong with the params.
  }
}

function hidePlayer() {
  detachSource();
  $('player').hidden = true;
  $('preview').hidden = false;
  $('play-button').textContent = 'Play';
}

async function togglePlay() {
  const video = $('player');
  if (!video.hidden) {
    hidePlayer();
    return;
  }
  if (!state.token) return;
  video.hidden = false;
  $('preview').hidden = true;
  $('play-button').textContent = 'Stop';
  await attachSource(video, state.token);
  video.play().catch(() => undefined);
  say('preview-status', 'Playing (play mode: each second renders as the player reaches it; seeking starts there).');
}

async function copy(id) {
  const text = $(id).value;
  try {
    await navigator.clipboard.writeText(text);
    say('copy-status', 'Copied.');
  } catch {
    // No clipboard permission (plain http, say): select it for Ctrl+C.
    $(id).select();
    say('copy-status', 'Selected: press Ctrl+C to copy.');
  }
}

function listenForChanges() {
  state.events?.abort();
  state.events = new AbortController();
  void state.api.events((name, data) => {
    if (name !== 'change' || !state.movie) return;
    const movies = data.movies ?? [];
    if (movies.includes('*') || movies.includes(state.movie.name)) {
      say('app-status', `${state.movie.name} changed on disk: reloaded.`);
      void openMovie(state.movie.name, true);
    }
    void state.api.movies().then(({ movies: all }) => showMovies(all)).then(() => {
      for (const b of document.querySelectorAll('#movie-list button')) b.setAttribute('aria-current', String(b.dataset.movie === state.movie?.name));
    }, () => undefined);
  }, state.events.signal);
}

function start() {
  $('signin').addEventListener('submit', (e) => {
    e.preventDefault();
    const project = $('project').value.trim();
    const key = $('key').value.trim();
    if (!project || !key) {
      say('app-status', 'Enter the project and its API key.');
      return;
    }
    void signIn(project, key);
  });
  $('signout').addEventListener('click', signOut);
  $('scrubber').addEventListener('input', () => seek(Number($('scrubber').value)));
  $('poster-button').addEventListener('click', () => {
    state.frame = null;
    if (state.timeline) $('scrubber').value = String(state.timeline.posterFrame);
    afterSeek();
  });
  $('play-button').addEventListener('click', togglePlay);
  for (const b of document.querySelectorAll('button.copy')) b.addEventListener('click', () => copy(b.dataset.copy));
  const project = STORE.getItem('montage.project');
  const key = STORE.getItem('montage.key');
  if (project) $('project').value = project;
  if (project && key) void signIn(project, key);
}

start();
