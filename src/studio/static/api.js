// The studio's calls to the API: every request carries the project's key in a header, never a cookie.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.details = Array.isArray(body?.details) ? body.details : [];
  }
}

export class Api {
  constructor(project, key) {
    this.project = project;
    this.key = key;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.key}`, ...extra };
  }

  async json(path, { method = 'GET', body, signal } = {}) {
    const res = await fetch(path, {
      method,
      signal,
      headers: this.headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await res.json().catch(() => undefined);
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  p(path = '') {
    return `/v2/studio/${encodeURIComponent(this.project)}${path}`;
  }

  movies() {
    return this.json(this.p());
  }

  movie(name) {
    return this.json(this.p(`/movies/${encodeURIComponent(name)}`));
  }

  token(movie, params, signal) {
    return this.json(`/v2/token/${encodeURIComponent(this.project)}`, { method: 'POST', body: { movie, params }, signal });
  }

  timeline(movie, params, signal) {
    return this.json(this.p('/timeline'), { method: 'POST', body: { movie, params }, signal });
  }

  embed(movie, params, token, signal) {
    return this.json(this.p('/embed'), { method: 'POST', body: { movie, params, token }, signal });
  }

  /** One frame of a token as a Blob (the token is the capability: no key needed, none sent). */
  async frame(token, frame, signal) {
    const query = frame === null ? '' : `?frame=${frame}`;
    const res = await fetch(`/v2/get/${encodeURIComponent(token)}.jpg${query}`, { signal });
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => undefined));
    return res.blob();
  }

  /**
   * Server-Sent Events over fetch (EventSource cannot send the key in a header): calls
   * `onEvent(name, data)` for each event, reconnects after a drop, until `signal` aborts.
   */
  async events(onEvent, signal) {
    while (!signal.aborted) {
      try {
        const res = await fetch(this.p('/events'), { headers: this.headers({ Accept: 'text/event-stream' }), signal });
        if (!res.ok || !res.body) throw new ApiError(res.status, undefined);
        onEvent('open', null);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let name = 'message';
            const data = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) name = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).trim());
            }
            if (data.length) onEvent(name, JSON.parse(data.join('\n')));
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}
