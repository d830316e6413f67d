// The REST protocol, as any client speaks it: one command (POST /), /pipeline, /multi-exec,
// the SSE streams read with fetch (so the token goes in a header), and the console's two
// endpoints. The token is sent as `Authorization: Bearer`, never as a cookie.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.token}`, ...extra };
  }

  /** POSTs JSON; answers { status, data } whatever the status. */
  async post(path, body, { base64 = false } = {}) {
    const headers = this.headers({ 'Content-Type': 'application/json' });
    if (base64) headers['Upstash-Encoding'] = 'base64';
    const resp = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body), cache: 'no-store' });
    let data;
    try {
      data = await resp.json();
    } catch {
      throw new ApiError(`HTTP ${resp.status}: the answer is not JSON`, resp.status);
    }
    return { status: resp.status, data };
  }

  /** One command's result; an error reply is thrown as ApiError. */
  async cmd(args, opts) {
    const { status, data } = await this.post('/', args.map(String), opts);
    if (data && typeof data === 'object' && 'error' in data) throw new ApiError(data.error, status);
    return data.result;
  }

  /** A batch: the array of { result } / { error } entries. */
  async batch(kind, cmds, opts) {
    const path = kind === 'multi' ? '/multi-exec' : '/pipeline';
    const { status, data } = await this.post(path, cmds.map((c) => c.map(String)), opts);
    if (!Array.isArray(data)) throw new ApiError(data && data.error ? data.error : `HTTP ${status}`, status);
    return data;
  }

  /** A pipeline's results; the first error reply is thrown. */
  async pipeline(cmds, opts) {
    const entries = await this.batch('pipeline', cmds, opts);
    return entries.map((e) => {
      if ('error' in e) throw new ApiError(e.error, 400);
      return e.result;
    });
  }

  async getJson(path) {
    const resp = await fetch(path, { headers: this.headers(), cache: 'no-store' });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new ApiError(data.error || `HTTP ${resp.status}`, resp.status);
    return data;
  }

  /** { tenant, read_only } of the token; 401 (ApiError) for an unknown one. */
  session() {
    return this.getJson('/console/api/session');
  }

  /** The tenant's usage and quotas (Meter::report). */
  usage() {
    return this.getJson('/console/api/usage');
  }

  /**
   * Opens /subscribe or /psubscribe for `names` and calls onFrame(text) with each event's
   * data until `signal` aborts or the server ends the stream. Resolves once the headers are in.
   */
  async stream(kind, names, onFrame, signal, onEnd) {
    const path = `/${kind}/${names.map(encodeURIComponent).join('/')}`;
    const resp = await fetch(path, { headers: this.headers(), signal, cache: 'no-store' });
    if (!resp.ok || !resp.body) {
      const data = await resp.json().catch(() => ({}));
      throw new ApiError(data.error || `HTTP ${resp.status}`, resp.status);
    }
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    (async () => {
      let buf = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const data = frame
              .split('\n')
              .filter((l) => l.startsWith('data:'))
              .map((l) => l.slice(l.startsWith('data: ') ? 6 : 5));
            if (data.length) onFrame(data.join('\n'));
          }
        }
        onEnd && onEnd(null);
      } catch (e) {
        onEnd && onEnd(signal && signal.aborted ? null : e);
      }
    })();
  }
}
