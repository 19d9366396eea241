// Types for sessiond.js, the browser (and Node 20) client of sessiond.

export interface SessionDoc<D = any> {
  key: string;
  version: number;
  created?: string;
  updated?: string;
  /** RFC 3339 UTC; absent when the session never expires */
  expires?: string;
  meta: Record<string, any>;
  data: D;
}

export interface Outbox {
  put(entry: OutboxEntry): Promise<void>;
  get(id: string): Promise<OutboxEntry | undefined>;
  delete(id: string): Promise<void>;
  all(): Promise<OutboxEntry[]>;
}

export interface OutboxEntry {
  id: string;
  baseUrl: string;
  key: string;
  token?: string;
  readToken?: string;
  /** the stored version and data the offline edits started from */
  baseVersion: number;
  base: any;
  /** the local data with the offline edits */
  data: any;
  at: number;
}

export interface ClientOptions {
  /** where sessiond answers, e.g. "https://sessions.example.com"; default: the page's origin */
  baseUrl?: string;
  fetch?: typeof fetch;
  /** per request, body included (default 10000) */
  timeoutMs?: number;
  /** extra attempts after a network error, 429 or 503 (default 4) */
  retries?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** debounce of change() (default 800) */
  autosaveMs?: number;
  /** conflict rounds of update() (default 10) */
  maxAttempts?: number;
  /** bytes a beacon may carry (default 63 KiB) */
  beaconLimit?: number;
  /** bytes a keepalive fetch may carry; bodies over it are saved eagerly (default 63 KiB) */
  keepaliveLimit?: number;
  /** where offline saves wait: IndexedDB in browsers, memory in Node; null for none */
  outbox?: Outbox | null;
}

export type Status = 'saved' | 'pending' | 'saving' | 'merged' | 'offline' | 'error' | 'readonly';

export interface Link { key: string | null; token?: string; readToken?: string; writable?: boolean }

export declare class SessiondError extends Error {
  name: 'SessiondError';
  /** HTTP status; 0 for a refusal made by the client itself (code "read_only") */
  status: number;
  /** the server's "error" member: conflict, not_found, unauthorized, too_large, rate_limited, ... */
  code: string;
  /** on 409/412: the stored version */
  version?: number;
  /** on 409/412: the stored document */
  current?: SessionDoc;
  /** Retry-After in milliseconds, when the server sent one */
  retryAfter?: number;
}

/** No answer could be read: network down, server down, timeout, CORS refusal, or (browsers hide it) a body too large. */
export declare class SessiondNetworkError extends Error {
  name: 'SessiondNetworkError';
  code: 'network' | 'timeout';
  timeout: boolean;
  url: string;
  cause: unknown;
}

export declare class Session<D = any> {
  readonly client: Client;
  readonly key: string;
  /** the write token (absent on a read-only handle, or from a server in --access open) */
  readonly token?: string;
  /** the read token (servers in --access private) */
  readonly readToken?: string;
  readonly canWrite: boolean;
  /** the created session's Location, resolved against baseUrl */
  readonly location?: string;
  /** the local data: stored data with pending edits applied */
  data: D;
  readonly version: number;
  readonly meta: Record<string, any>;
  readonly created?: string;
  readonly updated?: string;
  readonly expires?: string;
  readonly status: Status;
  readonly dirty: boolean;

  on(ev: 'status', cb: (status: Status, err?: Error) => void): () => void;
  on(ev: 'remote', cb: (s: Session<D>, from: 'tab' | 'conflict' | 'reload' | 'self') => void): () => void;
  on(ev: 'saved' | 'deleted', cb: (s: Session<D>) => void): () => void;
  on(ev: 'error', cb: (err: Error) => void): () => void;

  /** Transaction: apply fn to the stored data, save with its version, on 409 re-apply to `current`. */
  update(fn: (data: D) => D | void, o?: { maxAttempts?: number; expiresIn?: number | null; signal?: AbortSignal; onConflict?: (current: SessionDoc<D>) => void }): Promise<D>;
  /** Replace the data if still at this handle's version (else SessiondError 409); force: unconditional. */
  save(data: D, o?: { expiresIn?: number | null; force?: boolean; signal?: AbortSignal }): Promise<{ key: string; version: number; updated: string }>;
  /** JSON Merge Patch of meta (null deletes). */
  patchMeta(patch: Record<string, any>, o?: { signal?: AbortSignal }): Promise<{ key: string; version: number; updated: string }>;
  reload(o?: { signal?: AbortSignal }): Promise<this>;
  /** An editable copy (instantiate with from). */
  fork(o?: { expiresIn?: number; signal?: AbortSignal }): Promise<Session<D>>;
  delete(o?: { ifVersion?: boolean; signal?: AbortSignal }): Promise<{ key: string; deleted: true }>;
  /** Edit locally now; autosaved (debounced) with update semantics. */
  change(fn: (data: D) => D | void): D;
  /** Resolves when every local edit so far is stored. */
  flush(): Promise<void>;
  /** Save pending edits on pagehide / hidden (string beacon, then keepalive fetch). Returns an unhook function. */
  saveOnExit(): () => void;
  /** Hear of newer versions (other tabs at once, others by HEAD polling). Returns a stop function. */
  watch(cb: (s: Session<D>, from: string) => void, o?: { intervalMs?: number }): () => void;
  shareLink(appUrl?: string): string;
  editLink(appUrl?: string): string;
  close(): void;
}

export declare class Client {
  readonly baseUrl: string;
  readonly outbox: Outbox | null;
  url(path: string): string;
  request(method: string, path: string, o?: { body?: any; bearer?: string; signal?: AbortSignal; retries?: number; keepalive?: boolean }):
    Promise<{ status: number; headers: Headers; json: any; networkRetried: boolean }>;
  create<D = any>(o?: { data?: D; meta?: Record<string, any>; expiresIn?: number; from?: string; signal?: AbortSignal }): Promise<Session<D>>;
  open<D = any>(key: string, o?: { token?: string; readToken?: string; writable?: boolean; signal?: AbortSignal }): Promise<Session<D>>;
  openLink<D = any>(url: string, o?: { writable?: boolean; signal?: AbortSignal }): Promise<Session<D>>;
  /** Deliver offline saves of earlier pages (three-way merged, never overwriting newer work). */
  drainOutbox(): Promise<number>;
}

export declare function createClient(opts?: ClientOptions): Client;
export declare function parseLink(url: string): Link;
export declare function merge3<T>(base: T, ours: T, theirs: T): T;
export declare function mergePatch<T>(target: T, patch: any): T;
export declare function deepEqual(a: any, b: any): boolean;
export declare function memoryOutbox(): Outbox;
export declare function indexedDbOutbox(name?: string): Outbox;
