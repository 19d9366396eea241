// sessiond.js: the browser (and Node 20) client for sessiond. One ES module,
// no dependencies. Types: sessiond.d.ts beside it; JSDoc below.
//
//   import { createClient } from '/client/sessiond.js';
//   const sd = createClient({ baseUrl: 'https://sessions.example.com' });
//   const s = await sd.create({ data: { notes: {} } });
//   s.saveOnExit();
//   s.change(d => { d.notes[id] = { text: 'hi' }; });   // UI never waits; autosaved
//
// Every write is a POST with a text/plain JSON body that carries the version
// and the write token, so a cross-origin app pays no CORS preflight: an
// If-Match or Authorization header would cost one on every request.

/** @typedef {{key:string, version:number, created?:string, updated?:string, expires?:string, meta:object, data:any}} SessionDoc */

const DEFAULTS = {
  timeoutMs: 10000,      // one request, body included
  retries: 4,            // extra attempts after a network error, 421, 429 or 503
  retryBaseMs: 200,      // backoff: base * 2^n, jittered
  retryMaxMs: 15000,     // no single wait is longer (Retry-After included)
  autosaveMs: 800,       // debounce of change()
  maxAttempts: 10,       // update(): conflict rounds
  beaconLimit: 63 * 1024,     // sendBeacon and keepalive fetch stop near 64 KiB
  keepaliveLimit: 63 * 1024,
};

const enc = new TextEncoder();
const byteLength = (s) => enc.encode(s).length;
const clone = (v) => (v === undefined ? undefined : structuredClone(v));
const sleep = (ms, signal) => new Promise((resolve, reject) => {
  if (signal && signal.aborted) { reject(signal.reason); return; }
  const t = setTimeout(resolve, ms);
  if (signal) signal.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
});
const inBrowser = typeof window !== 'undefined' && typeof document !== 'undefined';

/** Jittered exponential backoff: a random wait in [d/2, d], d = base * 2^(n-1). */
function backoff(n, base, max) {
  const d = Math.min(max, base * 2 ** Math.max(0, n - 1));
  return d / 2 + Math.random() * d / 2;
}

function isObj(v) { return v !== null && typeof v === 'object' && !Array.isArray(v); }

/** Structural equality of JSON values. */
export function deepEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
}

/**
 * Three-way merge of JSON values: what `ours` changed relative to `base` is
 * applied to `theirs`, member by member in objects. Where both sides changed
 * the same scalar or array differently, `theirs` (the newer, stored work)
 * wins: a stale copy never overwrites newer work.
 */
export function merge3(base, ours, theirs) {
  if (deepEqual(ours, base)) return theirs;
  if (deepEqual(theirs, base)) return ours;
  if (isObj(ours) && isObj(theirs)) {
    const b = isObj(base) ? base : {};
    const out = {};
    for (const k of new Set([...Object.keys(theirs), ...Object.keys(ours), ...Object.keys(b)])) {
      const v = merge3(b[k], ours[k], theirs[k]);
      if (v !== undefined) out[k] = v;
    }
    return out;
  }
  return theirs;
}

/** RFC 7386 JSON Merge Patch, as the server applies it to meta. */
export function mergePatch(target, patch) {
  if (!isObj(patch)) return clone(patch);
  const out = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** An answer of sessiond that is an error: `{"error","message"}` and a status. */
export class SessiondError extends Error {
  /** @param {{status:number, code:string, message:string, version?:number, current?:SessionDoc, retryAfter?:number}} o */
  constructor(o) {
    super(o.message);
    this.name = 'SessiondError';
    this.status = o.status;
    this.code = o.code;
    this.version = o.version;
    this.current = o.current;
    this.retryAfter = o.retryAfter;
  }
}

/**
 * No HTTP answer could be read: the network is down, the server is not
 * answering, the request timed out, or the browser hid the answer (CORS).
 */
export class SessiondNetworkError extends Error {
  constructor(url, cause, timeout) {
    super(timeout
      ? `sessiond did not answer ${url} in time.`
      : `Could not reach sessiond at ${url} (${cause && cause.message ? cause.message : cause}). ` +
        'The network may be down, the server not answering, or the origin not allowed (CORS); ' +
        'a body larger than the server accepts can also show up as this error when the refusal carries no CORS headers.');
    this.name = 'SessiondNetworkError';
    this.code = timeout ? 'timeout' : 'network';
    this.timeout = !!timeout;
    this.url = url;
    this.cause = cause;
  }
}

function retryAfterMs(headers) {
  const v = headers && headers.get('Retry-After');
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

function timeoutSignal(ms, outer) {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(new DOMException('timeout', 'TimeoutError')), ms);
  const onOuter = () => ctl.abort(outer.reason);
  if (outer) {
    if (outer.aborted) ctl.abort(outer.reason);
    else outer.addEventListener('abort', onOuter, { once: true });
  }
  return { signal: ctl.signal, clear: () => { clearTimeout(t); if (outer) outer.removeEventListener('abort', onOuter); } };
}

/** The version an ETag names ("7" -> 7), or NaN. */
function etagVersion(etag) {
  const m = /^"(\d+)"$/.exec(etag || '');
  return m ? Number(m[1]) : NaN;
}

// ---------------------------------------------------------------- outboxes

/** An outbox kept in memory (Node, tests, or a browser without IndexedDB). */
export function memoryOutbox() {
  const m = new Map();
  return {
    async put(e) { m.set(e.id, clone(e)); },
    async get(id) { return clone(m.get(id)); },
    async delete(id) { m.delete(id); },
    async all() { return [...m.values()].map(clone); },
  };
}

/** An outbox in IndexedDB, so saves made offline outlive the page. */
export function indexedDbOutbox(name = 'sessiond-outbox') {
  let dbp;
  const db = () => dbp || (dbp = new Promise((resolve, reject) => {
    const r = indexedDB.open(name, 1);
    r.onupgradeneeded = () => r.result.createObjectStore('outbox', { keyPath: 'id' });
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  }));
  const tx = async (mode, fn) => {
    const d = await db();
    return new Promise((resolve, reject) => {
      const t = d.transaction('outbox', mode);
      const r = fn(t.objectStore('outbox'));
      t.oncomplete = () => resolve(r && r.result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  };
  return {
    put: (e) => tx('readwrite', (s) => { s.put(e); }),
    get: (id) => tx('readonly', (s) => s.get(id)),
    delete: (id) => tx('readwrite', (s) => { s.delete(id); }),
    all: () => tx('readonly', (s) => s.getAll()),
  };
}

// ---------------------------------------------------------------- links

/**
 * Read a share or edit link: `#key=K` (read-only), `#key=K&token=T` (edit),
 * `&read=R` (read token, private mode), `#key=K&edit=1` (edit, on a server
 * in --access open, which hands out no tokens). Tokens live in the fragment, which
 * a browser never sends to a server. A `?key=` in the query is read too.
 * @returns {{key:string|null, token?:string, readToken?:string, writable?:boolean}}
 */
export function parseLink(url) {
  const u = new URL(url, inBrowser ? location.href : 'http://localhost/');
  const h = new URLSearchParams(u.hash.replace(/^#/, ''));
  const key = h.get('key') || u.searchParams.get('key');
  const out = { key: key ? key.toUpperCase() : null };
  if (h.get('token')) out.token = h.get('token');
  if (h.get('edit') === '1') out.writable = true;   // edit link of a server that hands out no tokens
  if (h.get('read')) out.readToken = h.get('read');
  return out;
}

function buildLink(appUrl, params) {
  const u = new URL(appUrl, inBrowser ? location.href : undefined);
  u.hash = new URLSearchParams(params).toString();
  return u.href;
}

// ---------------------------------------------------------------- client

/**
 * @param {{baseUrl?:string, fetch?:typeof fetch, timeoutMs?:number, retries?:number,
 *   retryBaseMs?:number, retryMaxMs?:number, autosaveMs?:number, beaconLimit?:number,
 *   keepaliveLimit?:number, outbox?:object|null}} [opts]
 */
export function createClient(opts = {}) {
  return new Client(opts);
}

export class Client {
  constructor(opts = {}) {
    const base = opts.baseUrl || (inBrowser ? location.origin : undefined);
    if (!base) throw new TypeError('createClient: baseUrl is required outside a browser');
    this.baseUrl = new URL(base, inBrowser ? location.href : undefined).href.replace(/\/?$/, '/');
    this.opts = { ...DEFAULTS, ...opts };
    this.fetch = opts.fetch || globalThis.fetch.bind(globalThis);
    this.outbox = opts.outbox !== undefined ? opts.outbox
      : (typeof indexedDB !== 'undefined' ? indexedDbOutbox() : memoryOutbox());
    /** live sessions of this client, by outbox id */
    this.live = new Map();
    if (inBrowser) {
      window.addEventListener('online', () => {
        for (const s of this.live.values()) s._kick();
        this.drainOutbox().catch(() => {});
      });
    }
  }

  /** An absolute URL for a path of the API (Location headers are paths). */
  url(path) { return new URL(path.replace(/^\//, ''), this.baseUrl).href; }

  /**
   * One HTTP exchange with retries (network errors, 429, 503 with
   * Retry-After honoured; 421 from a node that no longer owns the key during
   * a bucket move: nothing was touched, and RFC 9110 lets any method be
   * retried) and a timeout per attempt. Errors are thrown typed.
   * @returns {Promise<{status:number, headers:Headers, json:any, networkRetried:boolean}>}
   */
  async request(method, path, { body, bearer, signal, retries = this.opts.retries, keepalive } = {}) {
    const url = this.url(path);
    let networkRetried = false;
    for (let attempt = 0; ; attempt++) {
      const headers = {};
      if (body !== undefined) headers['Content-Type'] = 'text/plain;charset=UTF-8';
      if (bearer) headers.Authorization = 'Bearer ' + bearer;   // costs a preflight cross-origin
      const ts = timeoutSignal(this.opts.timeoutMs, signal);
      let res, text = '';
      try {
        res = await this.fetch(url, {
          method, headers, body: body === undefined ? undefined : JSON.stringify(body),
          signal: ts.signal, cache: 'no-store', credentials: 'omit', keepalive,
        });
        if (method !== 'HEAD') text = await res.text();
      } catch (e) {
        ts.clear();
        if (signal && signal.aborted) throw signal.reason;
        const timedOut = ts.signal.aborted;
        if (attempt < retries) {
          networkRetried = true;
          await sleep(backoff(attempt + 1, this.opts.retryBaseMs, this.opts.retryMaxMs), signal);
          continue;
        }
        throw new SessiondNetworkError(url, e, timedOut);
      }
      ts.clear();
      if ((res.status === 421 || res.status === 429 || res.status === 503) && attempt < retries) {
        const ra = retryAfterMs(res.headers);
        await sleep(Math.min(this.opts.retryMaxMs, ra !== undefined ? ra : backoff(attempt + 1, this.opts.retryBaseMs, this.opts.retryMaxMs)), signal);
        continue;
      }
      let json;
      try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
      if (res.status >= 400) {
        const e = new SessiondError({
          status: res.status,
          code: (json && json.error) || 'http_' + res.status,
          message: (json && json.message) || `sessiond answered ${res.status} to ${method} ${path}.`,
          version: json && json.version,
          current: json && json.current,
          retryAfter: retryAfterMs(res.headers),
        });
        Object.defineProperty(e, 'networkRetried', { value: networkRetried });
        throw e;
      }
      return { status: res.status, headers: res.headers, json, networkRetried };
    }
  }

  /**
   * Create a session. `from` copies another session's data and meta.
   * @param {{data?:any, meta?:object, expiresIn?:number, from?:string, signal?:AbortSignal}} [o]
   */
  async create(o = {}) {
    const body = {};
    if (o.from !== undefined) body.from = o.from;
    if (o.data !== undefined) body.data = o.data;
    if (o.meta !== undefined) body.meta = o.meta;
    if (o.expiresIn !== undefined) body.expires_in = o.expiresIn;
    // A copy names its source in the URL too (?from=), so a router can send
    // it to the node that owns that key.
    const path = o.from !== undefined ? '/api/instantiate?from=' + encodeURIComponent(o.from) : '/api/instantiate';
    const r = await this.request('POST', path, { body, signal: o.signal });
    const a = r.json;
    const loc = r.headers.get('Location');
    const s = new Session(this, {
      key: a.key, version: a.version, created: a.created, updated: a.updated, expires: a.expires,
      data: o.data !== undefined ? clone(o.data) : {}, meta: o.meta !== undefined ? clone(o.meta) : {},
    }, { token: a.token, readToken: a.read_token, canWrite: true, location: loc ? this.url(loc) : undefined });
    if (o.from !== undefined) await s.reload();
    return s;
  }

  /**
   * Load a session. Without a write token the handle is read-only
   * (`canWrite` false); `readToken` is needed in private mode. `writable:
   * true` opens for writing without a token (a server in `--access open`).
   * @param {string} key @param {{token?:string, readToken?:string, writable?:boolean, signal?:AbortSignal}} [o]
   */
  async open(key, o = {}) {
    const doc = await this._load(key, o.readToken, o.signal);
    return new Session(this, doc, { token: o.token, readToken: o.readToken, canWrite: !!o.token || !!o.writable });
  }

  /** Open the session a share or edit link names. */
  openLink(url, o = {}) {
    const l = parseLink(url);
    if (!l.key) throw new TypeError('openLink: the link names no session');
    return this.open(l.key, { ...o, token: l.token, readToken: l.readToken, writable: l.writable || o.writable });
  }

  async _load(key, readToken, signal) {
    const r = await this.request('GET', '/api/load?key=' + encodeURIComponent(key), { bearer: readToken, signal });
    return r.json;
  }

  /**
   * Send what the outbox holds (saves made offline in an earlier page, say):
   * each entry is merged three-way into the stored document through update
   * semantics, so it never overwrites newer work. Entries of sessions open
   * in this client are left to them. Returns how many were delivered.
   */
  async drainOutbox() {
    if (!this.outbox) return 0;
    let n = 0;
    for (const e of await this.outbox.all()) {
      if (e.baseUrl !== this.baseUrl || this.live.has(e.id)) continue;
      try {
        const doc = await this._load(e.key, e.readToken);
        const s = new Session(this, doc, { token: e.token, readToken: e.readToken, canWrite: true, detached: true });
        await s.update((theirs) => merge3(e.base, e.data, theirs));
        await this.outbox.delete(e.id);
        n++;
      } catch (err) {
        if (err instanceof SessiondError && (err.status === 404 || err.status === 401 || err.status === 403)) {
          await this.outbox.delete(e.id);   // gone, or no right to write it: nothing to deliver to
        } else if (!(err instanceof SessiondNetworkError)) {
          throw err;
        }
      }
    }
    return n;
  }
}

// ---------------------------------------------------------------- session

/** Apply an edit: `fn` may change the draft in place or return a new value. */
function applyFn(fn, draft) {
  const r = fn(draft);
  return r === undefined ? draft : r;
}

export class Session {
  constructor(client, doc, { token, readToken, canWrite, location, detached } = {}) {
    this.client = client;
    this.key = doc.key;
    this.token = token;
    this.readToken = readToken;
    /** false for a handle opened without a write token */
    this.canWrite = !!canWrite;
    this.location = location;
    /** the stored document as last seen */
    this._base = { version: doc.version, data: doc.data === undefined ? {} : doc.data, meta: doc.meta || {},
      created: doc.created, updated: doc.updated, expires: doc.expires };
    /** local edits not yet stored, in order */
    this._pending = [];
    this.data = clone(this._base.data);
    this.status = this.canWrite ? 'saved' : 'readonly';
    this._listeners = new Map();
    this._timer = null;
    this._chain = null;
    this._inflight = false;
    this._inDoubt = [];   // exit beacons and autosaves never answered: {version, data, covers: how many pending edits}
    this._retryTimer = null;
    this._retryN = 0;
    this.id = client.baseUrl + ' ' + this.key;
    if (!detached) {
      client.live.set(this.id, this);
      if (typeof BroadcastChannel !== 'undefined') {
        this._bc = new BroadcastChannel('sessiond:' + this.id);
        if (this._bc.unref) this._bc.unref();   // Node: an open channel must not keep the process alive
        this._bc.onmessage = (m) => {
          if (m.data && m.data.type === 'saved') this._adopt(m.data.doc, 'tab');
          else if (m.data && m.data.type === 'deleted') this._emit('deleted', this);
        };
      }
    }
  }

  get version() { return this._base.version; }
  get meta() { return this._base.meta; }
  get created() { return this._base.created; }
  get updated() { return this._base.updated; }
  get expires() { return this._base.expires; }
  /** true while local edits wait to be stored */
  get dirty() { return this._pending.length > 0; }

  /** Subscribe: 'status' (status, error?), 'remote' (a newer version from elsewhere), 'saved', 'error', 'deleted'. Returns an unsubscribe function. */
  on(ev, cb) {
    if (!this._listeners.has(ev)) this._listeners.set(ev, new Set());
    this._listeners.get(ev).add(cb);
    return () => this._listeners.get(ev).delete(cb);
  }

  _emit(ev, ...a) {
    for (const cb of this._listeners.get(ev) || []) {
      try { cb(...a); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }

  _setStatus(st, err) {
    this.status = st;
    this._emit('status', st, err);
  }

  _requireWrite() {
    if (!this.canWrite) {
      throw new SessiondError({ status: 0, code: 'read_only',
        message: `Session ${this.key} was opened without its write token; fork() it for an editable copy.` });
    }
  }

  /** Local view = stored data with the pending edits applied on top. */
  _recompute() {
    let d = clone(this._base.data);
    for (const f of this._pending) d = applyFn(f, d);
    this.data = d;
  }

  /** Take a newer stored document (from a 409, a poll, another tab). */
  _adopt(doc, from) {
    if (!doc || doc.key !== this.key || !(doc.version > this._base.version)) return false;
    this._base = { version: doc.version, data: doc.data === undefined ? {} : doc.data, meta: doc.meta || {},
      created: doc.created, updated: doc.updated, expires: doc.expires };
    this._recompute();
    this._emit('remote', this, from);
    return true;
  }

  _stored(version, data, meta, answer) {
    this._base = { ...this._base, version, data, meta,
      updated: answer && answer.updated, expires: answer && 'expires' in answer ? answer.expires : this._base.expires };
    if (this._bc) {
      const doc = { key: this.key, version, data, meta, created: this._base.created, updated: this._base.updated, expires: this._base.expires };
      try { this._bc.postMessage({ type: 'saved', doc }); } catch { /* closed */ }
    }
    this._emit('saved', this);
  }

  /** The URL of a write to this session: the key in the query string,
   * where a router sees it (the body names it too, for older servers). */
  _path(op) { return '/api/' + op + '?key=' + encodeURIComponent(this.key); }

  _saveBody(version, data, extra) {
    const b = { key: this.key };
    if (this.token !== undefined) b.token = this.token;
    if (version !== undefined) b.version = version;
    if (data !== undefined) b.data = data;
    return Object.assign(b, extra);
  }

  /**
   * Transaction semantics: apply `fn` to the stored data, save with the
   * body `version`; on 409 take `current` from the answer, apply `fn` to it
   * and save again, with jittered backoff, at most `maxAttempts` times.
   * Never overwrites a version it has not seen. Resolves to the stored data.
   * @param {(data:any)=>any} fn
   * @param {{maxAttempts?:number, expiresIn?:number|null, signal?:AbortSignal, onConflict?:()=>void}} [o]
   */
  async update(fn, o = {}) {
    this._requireWrite();
    const max = o.maxAttempts || this.client.opts.maxAttempts;
    const lost = [];   // writes of this call whose answer never came
    for (let attempt = 1; ; attempt++) {
      const base = this._base;
      const next = applyFn(fn, clone(base.data));
      const extra = o.expiresIn !== undefined ? { expires_in: o.expiresIn } : undefined;
      const body = this._saveBody(base.version, next, extra);
      const sent = { version: base.version + 1, data: next, covers: o.covers };
      try {
        const r = await this.client.request('POST', this._path('save'), { body, signal: o.signal });
        this._inDoubt = [];
        this._stored(r.json.version, next, base.meta, r.json);
        this._recompute();
        return next;
      } catch (e) {
        if (!(e instanceof SessiondError) || e.status !== 409 || !e.current) {
          // Local edits (o.covers: how many) may be stored though unanswered.
          if (e instanceof SessiondNetworkError && o.covers !== undefined) this._inDoubt.push(sent);
          throw e;
        }
        if (e.networkRetried) lost.push(sent);
        const match = (w) => w.version === e.current.version && deepEqual(w.data, e.current.data);
        // Our own write whose answer was lost is what is stored now: done.
        if (lost.some(match)) {
          this._adopt(e.current, 'self');
          return e.current.data;
        }
        // A beacon or an earlier unanswered autosave stored the first
        // `covers` local edits: the caller says whether any are left.
        const earlier = o.onInDoubt && this._inDoubt.find(match);
        if (earlier) {
          this._inDoubt = [];
          this._adopt(e.current, 'self');
          if (o.onInDoubt(earlier.covers) === 'done') return e.current.data;
          continue;
        }
        this._adopt(e.current, 'conflict');
        if (o.onConflict) o.onConflict(e.current);
        if (attempt >= max) throw e;
        await sleep(backoff(attempt, this.client.opts.retryBaseMs / 4, 2000), o.signal);
      }
    }
  }


  /**
   * Replace the data, if nobody stored a newer version since this handle
   * last saw it (else a SessiondError 409 carrying `current`, which the
   * handle adopts). `force: true` saves unconditionally.
   * @param {any} data @param {{expiresIn?:number|null, force?:boolean, signal?:AbortSignal}} [o]
   */
  async save(data, o = {}) {
    this._requireWrite();
    const extra = o.expiresIn !== undefined ? { expires_in: o.expiresIn } : undefined;
    const body = this._saveBody(o.force ? undefined : this._base.version, data, extra);
    try {
      const r = await this.client.request('POST', this._path('save'), { body, signal: o.signal });
      this._pending = [];
      this._stored(r.json.version, clone(data), this._base.meta, r.json);
      this._recompute();
      this._setStatus('saved');
      return r.json;
    } catch (e) {
      if (e instanceof SessiondError && e.current) this._adopt(e.current, 'conflict');
      throw e;
    }
  }

  /** Merge-patch the meta (RFC 7386; `null` deletes a member). Atomic on the server, needs no version. */
  async patchMeta(patch, o = {}) {
    this._requireWrite();
    const before = this._base.version;
    const r = await this.client.request('POST', this._path('save'), { body: this._saveBody(undefined, undefined, { meta: patch }), signal: o.signal });
    if (r.json.version === before + 1) {
      this._stored(r.json.version, this._base.data, mergePatch(this._base.meta, patch), r.json);
    } else {
      await this.reload();
    }
    return r.json;
  }

  /** Fetch the stored document again (adopted if newer). */
  async reload(o = {}) {
    const doc = await this.client._load(this.key, this.readToken, o.signal);
    if (doc.version === this._base.version) {
      this._base = { ...this._base, data: doc.data, meta: doc.meta || {}, expires: doc.expires };
      this._recompute();
    } else this._adopt(doc, 'reload');
    return this;
  }

  /** A new, editable session holding a copy of this one's data and meta. */
  fork(o = {}) {
    return this.client.create({ from: this.key, expiresIn: o.expiresIn, signal: o.signal });
  }

  /** Delete the session. With `ifVersion: true` only if still at this handle's version (else 409). */
  async delete(o = {}) {
    this._requireWrite();
    const body = { key: this.key };
    if (this.token !== undefined) body.token = this.token;
    if (o.ifVersion) body.version = this._base.version;
    const r = await this.client.request('POST', this._path('delete'), { body, signal: o.signal });
    this._pending = [];
    clearTimeout(this._timer);
    if (this._bc) { try { this._bc.postMessage({ type: 'deleted' }); } catch { /* closed */ } }
    if (this.client.outbox) await this.client.outbox.delete(this.id).catch(() => {});
    this.close();
    return r.json;
  }

  // ------------------------------------------------------------ local edits

  /**
   * Edit the local data now (the UI never waits) and autosave, debounced,
   * through update semantics: on a conflict the pending edits are applied
   * again to the newer stored data, so edits from other tabs merge.
   * @param {(data:any)=>any} fn
   */
  change(fn) {
    this._requireWrite();
    this.data = applyFn(fn, this.data);
    this._pending.push(fn);
    if (this.status !== 'offline') this._setStatus('pending');
    // A body no beacon can carry at exit is saved at once instead.
    const eager = this._exitBody().bytes > this.client.opts.keepaliveLimit;
    this._schedule(eager ? 0 : this.client.opts.autosaveMs);
    return this.data;
  }

  _schedule(ms) {
    clearTimeout(this._timer);
    this._timer = setTimeout(() => { this._timer = null; this._autosave().catch(() => {}); }, ms);
  }

  _kick() {
    if (this._pending.length && !this._inflight) this._schedule(0);
  }

  /** Save the pending edits; calls are queued, so two batches never race. */
  _autosave() {
    const run = (this._chain || Promise.resolve()).catch(() => {}).then(() => this._saveBatch());
    this._chain = run;
    const done = () => { if (this._chain === run) this._chain = null; };
    run.then(done, done);
    return run;
  }

  async _saveBatch() {
    if (!this._pending.length || !this.canWrite) return;
    const batch = this._pending.slice();
    let merged = false;
    let covered = 0;   // edits of the batch an unanswered earlier write did store
    this._setStatus('saving');
    this._inflight = true;
    try {
      await this.update((d) => { for (const f of batch.slice(covered)) d = applyFn(f, d); return d; }, {
        covers: batch.length,
        onConflict: () => { merged = true; },
        onInDoubt: (k) => { covered = Math.max(covered, k); return covered >= batch.length ? 'done' : 'again'; },
      });
      this._pending.splice(0, Math.max(batch.length, covered));
      this._recompute();
      this._retryN = 0;
      if (this._pending.length) { this._setStatus('pending'); this._schedule(this.client.opts.autosaveMs); return; }
      this._setStatus(merged ? 'merged' : 'saved');
      if (this.client.outbox) await this.client.outbox.delete(this.id).catch(() => {});
    } catch (e) {
      if (e instanceof SessiondNetworkError) {
        await this._toOutbox();
        this._setStatus('offline', e);
        // Retry later; a browser also retries at once when it comes online.
        this._retryN++;
        clearTimeout(this._retryTimer);
        this._retryTimer = setTimeout(() => this._kick(), backoff(this._retryN, 1000, 30000));
      } else {
        this._setStatus('error', e);
        this._emit('error', e);
      }
      throw e;
    } finally {
      this._inflight = false;
    }
  }

  /** Keep the local state in the outbox, so it outlives this page. */
  async _toOutbox() {
    const ob = this.client.outbox;
    if (!ob || !this._pending.length) return;
    const old = await ob.get(this.id).catch(() => undefined);
    await ob.put({
      id: this.id, baseUrl: this.client.baseUrl, key: this.key, token: this.token, readToken: this.readToken,
      baseVersion: old ? old.baseVersion : this._base.version,
      base: old ? old.base : this._base.data,
      data: this.data, at: Date.now(),
    }).catch(() => {});
  }

  /** Resolves when every local edit so far is stored (rejects on a lasting error). */
  async flush() {
    for (let i = 0; i < 1000 && (this._pending.length || this._chain || this._timer); i++) {
      clearTimeout(this._timer);
      this._timer = null;
      await this._autosave();
    }
  }

  // ------------------------------------------------------------ exit

  _exitBody() {
    // A save in flight will, if it lands, make the version one higher.
    const version = this._base.version + (this._inflight ? 1 : 0);
    const body = JSON.stringify(this._saveBody(version, this.data));
    return { body, version, bytes: byteLength(body) };
  }

  /**
   * On page exit (pagehide, or the page hidden), send pending edits: a
   * string beacon (text/plain, the token in the body); if the beacon is
   * refused or over its limit, a keepalive fetch; bodies over that are
   * saved eagerly by change() beforehand. Returns a function that unhooks.
   */
  saveOnExit() {
    if (!inBrowser) return () => {};
    const onHide = () => { if (document.visibilityState === 'hidden') this._exitSave(); };
    const onPageHide = () => this._exitSave();
    document.addEventListener('visibilitychange', onHide);
    window.addEventListener('pagehide', onPageHide);
    return () => {
      document.removeEventListener('visibilitychange', onHide);
      window.removeEventListener('pagehide', onPageHide);
    };
  }

  _exitSave() {
    if (!this.canWrite || !this._pending.length) return false;
    const { body, version, bytes } = this._exitBody();
    const url = this.client.url(this._path('save'));
    this._toOutbox();   // may not finish before the page goes; harmless if it does
    let sent = false;
    if (bytes <= this.client.opts.beaconLimit && typeof navigator !== 'undefined' && navigator.sendBeacon) {
      sent = navigator.sendBeacon(url, body);   // a string: goes as text/plain, no preflight
    }
    if (!sent && bytes <= this.client.opts.keepaliveLimit) {
      try {
        this.client.fetch(url, { method: 'POST', body, keepalive: true, credentials: 'omit',
          headers: { 'Content-Type': 'text/plain;charset=UTF-8' } }).catch(() => {});
        sent = true;
      } catch { /* over the browser's keepalive budget */ }
    }
    if (sent) {
      // If the page lives on, the next save sees a 409 naming this write, and takes it as ours.
      this._inDoubt.push({ version: version + 1, data: clone(this.data), covers: this._pending.length });
      clearTimeout(this._timer);
      this._schedule(this.client.opts.autosaveMs);
    }
    return sent;
  }

  // ------------------------------------------------------------ watching

  /**
   * Call `cb(session)` whenever a newer version is stored elsewhere: other
   * tabs tell through BroadcastChannel; other devices are polled with HEAD
   * (no preflight, no body, nothing to parse while the ETag is unchanged).
   * Returns a function that stops watching.
   * @param {(s:Session, from:string)=>void} cb @param {{intervalMs?:number}} [o]
   */
  watch(cb, o = {}) {
    const interval = o.intervalMs || 5000;
    const off = this.on('remote', cb);
    let stopped = false, timer = null;
    const tick = async () => {
      if (stopped) return;
      try {
        if (!(inBrowser && document.visibilityState === 'hidden')) {
          const r = await this.client.request('HEAD', '/api/load?key=' + encodeURIComponent(this.key),
            { bearer: this.readToken, retries: 0 });
          const v = etagVersion(r.headers.get('ETag'));
          if (v > this._base.version) await this.reload();
        }
      } catch (e) {
        if (e instanceof SessiondError && e.status === 404) this._emit('deleted', this);
      }
      if (!stopped) timer = setTimeout(tick, interval);
    };
    timer = setTimeout(tick, interval);
    return () => { stopped = true; clearTimeout(timer); off(); };
  }

  // ------------------------------------------------------------ links

  /** A read-only link to the app (default: this page) naming this session. */
  shareLink(appUrl) {
    const p = { key: this.key };
    if (this.readToken) p.read = this.readToken;
    return buildLink(appUrl || (inBrowser ? location.href : 'http://localhost/'), p);
  }

  /** An edit link: carries the write token, in the fragment only. */
  editLink(appUrl) {
    // A server in --access open hands out no token: the link says "edit".
    const p = this.token ? { key: this.key, token: this.token } : { key: this.key, edit: '1' };
    if (this.readToken) p.read = this.readToken;
    return buildLink(appUrl || (inBrowser ? location.href : 'http://localhost/'), p);
  }

  /** Stop timers and the tab channel (pending edits stay in the outbox if offline). */
  close() {
    clearTimeout(this._timer);
    clearTimeout(this._retryTimer);
    if (this._bc) { this._bc.close(); this._bc = null; }
    this.client.live.delete(this.id);
  }
}
