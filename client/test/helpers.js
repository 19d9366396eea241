// Shared by the client tests: where the stack is (tests/client/run.sh sets
// it up), the session files on disk, and probes for server features that
// other issues bring (so a test can say exactly what it waits for).
import { readFile } from 'node:fs/promises';
import http from 'node:http';

export const BASE = process.env.SD_BASE;
export const DATA = process.env.SD_DATA;
if (!BASE || !DATA) throw new Error('run these tests through tests/client/run.sh (SD_BASE/SD_DATA unset)');

/** The session file as it is on disk, parsed (null if there is none). */
export async function onDisk(key) {
  try {
    return JSON.parse(await readFile(`${DATA}/sessions/${key.slice(0, 2)}/${key}.json`, 'utf8'));
  } catch (e) {
    if (e.code === 'ENOENT') return null;
    throw e;
  }
}

/** Poll fn until it returns a truthy value, at most ms; returns the last value. */
export async function until(fn, ms = 5000, step = 50) {
  const end = Date.now() + ms;
  let v;
  while (!(v = await fn()) && Date.now() < end) await new Promise((r) => setTimeout(r, step));
  return v;
}

async function raw(path, body) {
  const r = await fetch(BASE + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: await r.json().catch(() => null), headers: r.headers };
}

let features;
/**
 * What this server has, probed once: write tokens (issue 7: instantiate
 * answers "token"), delete (issue 9: /api/delete deletes a fresh session),
 * expiry (issue 9: instantiate takes expires_in).
 */
export async function serverFeatures() {
  if (features) return features;
  const a = await raw('/api/instantiate', {});
  const tokens = typeof a.json.token === 'string';
  const d = await raw('/api/delete', tokens ? { key: a.json.key, token: a.json.token } : { key: a.json.key });
  const del = d.status === 200 && d.json && d.json.deleted === true;
  const e = await raw('/api/instantiate', { expires_in: 60 });   // the smallest lifetime allowed
  const expiry = e.status === 201;
  features = { tokens, delete: del, expiry };
  return features;
}

export const MISSING = {
  tokens: 'SKIP: needs write tokens (issue 7): this server\'s instantiate answers no "token"',
  delete: 'SKIP: needs POST /api/delete (issue 9): this server does not delete a fresh session',
  expiry: 'SKIP: needs expiry (issue 9): this server refuses "expires_in" on instantiate',
};

/** A tiny local HTTP server answering with handler(req, res); resolves to {url, close, hits}. */
export function stubServer(handler) {
  return new Promise((resolve) => {
    const hits = [];
    const srv = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => { hits.push({ method: req.method, url: req.url, body, at: Date.now() }); handler(req, res, hits.length, body); });
    });
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      resolve({ url: `http://127.0.0.1:${port}`, hits, close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(r); }) });
    });
  });
}
