// The client in Node 20 against a real nginx + sessiond (tests/client/run.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createClient, SessiondError, SessiondNetworkError, parseLink, merge3, mergePatch, memoryOutbox,
} from '../sessiond.js';
import { BASE, onDisk, until, serverFeatures, MISSING, stubServer } from './helpers.js';

// Opens for writing: with the token, or, on a server that hands out none, without.
const w = (s) => ({ token: s.token, writable: !s.token });
const fast = { retryBaseMs: 20, retryMaxMs: 3000, autosaveMs: 30 };

test('create, open, save, reload: the file on disk follows', async () => {
  const sd = createClient({ baseUrl: BASE, ...fast });
  const s = await sd.create({ data: { list: [1] }, meta: { app: 't' } });
  assert.match(s.key, /^[A-Z0-9]{8}$/);
  assert.equal(s.version, 1);
  assert.equal(s.canWrite, true);
  assert.equal(s.location, `${BASE}/api/load?key=${s.key}`, 'the Location path is resolved against baseUrl');
  assert.deepEqual((await onDisk(s.key)).data, { list: [1] });
  await s.save({ list: [1, 2] });
  assert.equal(s.version, 2);
  const disk = await onDisk(s.key);
  assert.deepEqual([disk.version, disk.data], [2, { list: [1, 2] }]);
  const r = await sd.open(s.key.toLowerCase(), w(s));
  assert.deepEqual([r.version, r.data, r.meta], [2, { list: [1, 2] }, { app: 't' }]);
  await s.patchMeta({ theme: 'dark', app: null });
  assert.deepEqual([s.version, s.meta], [3, { theme: 'dark' }]);
  assert.deepEqual((await onDisk(s.key)).meta, { theme: 'dark' });
  s.close(); r.close();
});

// Issue 13: a router sees only the URL. Seen failing: with the client's
// save and delete posting to /api/save and /api/delete (key in the body
// only), the keyless list below held them and the counter moved.
test('every keyed request names its key in the URL (?key=, ?from=)', async () => {
  const seen = [];
  const spy = (url, init) => { seen.push(`${init.method || 'GET'} ${new URL(url).pathname}${new URL(url).search}`); return fetch(url, init); };
  const counter = async () => {
    const m = await (await fetch(BASE + '/api/metrics')).text();
    return Number((m.match(/^sessiond_saves_without_url_key_total (\d+)$/m) || [])[1]);
  };
  const before = await counter();
  const sd = createClient({ baseUrl: BASE, ...fast, fetch: spy });
  const s = await sd.create({ data: { a: 1 } });
  const r = await sd.open(s.key, w(s));
  await r.save({ a: 2 });
  await r.update((d) => { d.a += 1; });
  await r.patchMeta({ t: 1 });
  const copy = await r.fork();
  await copy.delete();
  const k = s.key, c = copy.key;
  const keyed = seen.filter((l) => !/^POST \/api\/instantiate$/.test(l));
  assert.deepEqual(keyed.filter((l) => !l.endsWith(`?key=${k}`) && !l.endsWith(`?from=${k}`) && !l.endsWith(`?key=${c}`)), []);
  for (const want of [`GET /api/load?key=${k}`, `POST /api/save?key=${k}`, `POST /api/instantiate?from=${k}`, `POST /api/delete?key=${c}`]) {
    assert.ok(seen.includes(want), want + ' in ' + seen.join(', '));
  }
  if (!Number.isNaN(before)) assert.equal(await counter(), before, 'no save without a URL key');
  s.close(); r.close(); copy.close();
});

test('a handle opened without a token is read-only and refuses to save, locally', async () => {
  const sd = createClient({ baseUrl: BASE, ...fast });
  const s = await sd.create({ data: { a: 1 } });
  const ro = await sd.open(s.key);
  assert.equal(ro.canWrite, false);
  assert.equal(ro.status, 'readonly');
  await assert.rejects(ro.save({ a: 2 }), (e) => e instanceof SessiondError && e.code === 'read_only');
  assert.throws(() => ro.change((d) => { d.a = 3; }), (e) => e.code === 'read_only');
  assert.equal((await onDisk(s.key)).version, 1);
  const copy = await ro.fork();
  assert.notEqual(copy.key, s.key);
  assert.equal(copy.canWrite, true);
  assert.deepEqual(copy.data, { a: 1 });
  s.close(); ro.close(); copy.close();
});

test('the server refuses a save without the write token (401 unauthorized)', async (t) => {
  if (!(await serverFeatures()).tokens) { t.skip(MISSING.tokens); return; }
  const sd = createClient({ baseUrl: BASE, ...fast });
  const s = await sd.create({ data: { a: 1 } });
  assert.match(s.token, /^[A-Za-z0-9_-]{43}$/);
  const forged = await sd.open(s.key, { token: 'A'.repeat(43) });
  await assert.rejects(forged.save({ a: 2 }), (e) => e instanceof SessiondError && e.status === 401 && e.code === 'unauthorized');
  assert.equal((await onDisk(s.key)).version, 1);
  s.close(); forged.close();
});

// Guards the conflict loop. Seen failing: with the body "version" left out of
// update()'s save (last writer wins), the count ended far below 60.
test('update() under a conflict storm: 5 clients x 12 increments, every one counted', async () => {
  const first = await createClient({ baseUrl: BASE, ...fast }).create({ data: { n: 0 } });
  const handles = await Promise.all(Array.from({ length: 5 }, () =>
    createClient({ baseUrl: BASE, ...fast }).open(first.key, w(first))));
  let conflicts = 0;
  await Promise.all(handles.map(async (h) => {
    for (let i = 0; i < 12; i++) await h.update((d) => { d.n += 1; }, { maxAttempts: 500, onConflict: () => { conflicts++; } });
  }));
  const disk = await onDisk(first.key);
  assert.equal(disk.data.n, 60);
  assert.equal(disk.version, 61);
  assert.ok(conflicts > 0, 'the storm did produce conflicts');
  for (const h of [first, ...handles]) h.close();
});

test('change() from two clients merges through 409s: no edit lost', async () => {
  const a = await createClient({ baseUrl: BASE, ...fast }).create({ data: { notes: {} } });
  const b = await createClient({ baseUrl: BASE, ...fast }).open(a.key, w(a));
  const statuses = new Set();
  a.on('status', (st) => statuses.add(st)); b.on('status', (st) => statuses.add(st));
  for (let i = 0; i < 10; i++) {
    a.change((d) => { d.notes['a' + i] = i; });
    b.change((d) => { d.notes['b' + i] = i; });
    await new Promise((r) => setTimeout(r, 7));
  }
  await Promise.all([a.flush(), b.flush()]);
  await a.reload(); await b.reload();
  const disk = await onDisk(a.key);
  assert.equal(Object.keys(disk.data.notes).length, 20);
  assert.deepEqual(a.data, disk.data);
  assert.deepEqual(b.data, disk.data);
  assert.ok(statuses.has('saved') || statuses.has('merged'));
  a.close(); b.close();
});

test('typed errors: 404, 400, 409 with current, and a network error that names the causes', async () => {
  const sd = createClient({ baseUrl: BASE, ...fast });
  await assert.rejects(sd.open('ZZZZZZZ9'), (e) => e instanceof SessiondError && e.status === 404 && e.code === 'not_found');
  await assert.rejects(sd.open('../etc'), (e) => e instanceof SessiondError && e.status === 400 && e.code === 'bad_key');
  const s = await sd.create({ data: { v: 1 } });
  const other = await sd.open(s.key, w(s));
  await other.save({ v: 2 });
  const err = await s.save({ v: 3 }).catch((e) => e);
  assert.ok(err instanceof SessiondError);
  assert.deepEqual([err.status, err.code, err.version, err.current.data], [409, 'conflict', 2, { v: 2 }]);
  assert.equal(s.version, 2, 'the handle took the current document from the 409');
  assert.deepEqual((await onDisk(s.key)).data, { v: 2 }, 'nothing was overwritten');
  const stub = await stubServer(() => {});
  await stub.close();   // a port nothing listens on any more
  const down = createClient({ baseUrl: stub.url, retries: 1, retryBaseMs: 10, timeoutMs: 2000 });
  const ne = await down.open('ABCDEFGH').catch((e) => e);
  assert.ok(ne instanceof SessiondNetworkError, String(ne));
  assert.equal(ne.code, 'network');
  assert.match(ne.message, /larger than the server accepts/);
  assert.match(ne.message, /CORS/);
  s.close(); other.close();
});

test('retries a 421 from a node that gave the key away (a bucket move), then succeeds', async () => {
  // Without 421 in the retried statuses this test fails: open() throws
  // SessiondError 421 misdirected after one hit.
  const stub = await stubServer((req, res, n) => {
    if (n === 1) { res.writeHead(421, { 'Content-Type': 'application/json' }); res.end('{"error":"misdirected","message":"not mine"}'); return; }
    res.writeHead(200, { 'Content-Type': 'application/json', ETag: '"1"' });
    res.end('{"key":"ABCDEFGH","version":1,"meta":{},"data":{"ok":true}}');
  });
  const s = await createClient({ baseUrl: stub.url, retryBaseMs: 10 }).open('ABCDEFGH');
  assert.deepEqual(s.data, { ok: true });
  assert.equal(stub.hits.length, 2);
  await stub.close();
});

test('retries 429 and 503 honouring Retry-After, then gives up with the typed error', async () => {
  const stub = await stubServer((req, res, n) => {
    if (n === 1) { res.writeHead(429, { 'Retry-After': '1', 'Content-Type': 'application/json' }); res.end('{"error":"rate_limited","message":"slow down"}'); return; }
    if (n === 2) { res.writeHead(503, { 'Retry-After': '1', 'Content-Type': 'application/json' }); res.end('{"error":"busy","message":"busy"}'); return; }
    res.writeHead(200, { 'Content-Type': 'application/json', ETag: '"1"' });
    res.end('{"key":"ABCDEFGH","version":1,"meta":{},"data":{"ok":true}}');
  });
  const sd = createClient({ baseUrl: stub.url, retryBaseMs: 10 });
  const s = await sd.open('ABCDEFGH');
  assert.deepEqual(s.data, { ok: true });
  assert.equal(stub.hits.length, 3);
  // Each retry waited for Retry-After (1 s), not the 10 ms backoff.
  assert.ok(stub.hits[1].at - stub.hits[0].at >= 950, `waited ${stub.hits[1].at - stub.hits[0].at} ms`);
  assert.ok(stub.hits[2].at - stub.hits[1].at >= 950, `waited ${stub.hits[2].at - stub.hits[1].at} ms`);
  await stub.close();

  const always = await stubServer((req, res) => {
    res.writeHead(429, { 'Retry-After': '0', 'Content-Type': 'application/json' });
    res.end('{"error":"rate_limited","message":"Too many requests."}');
  });
  const e = await createClient({ baseUrl: always.url, retries: 2 }).open('ABCDEFGH').catch((x) => x);
  assert.ok(e instanceof SessiondError);
  assert.deepEqual([e.status, e.code, e.retryAfter], [429, 'rate_limited', 0]);
  assert.equal(always.hits.length, 3, 'one try and two retries');
  await always.close();
});

test('timeouts: a server that never answers ends in a timeout error; a slow first try is retried', async () => {
  const held = [];
  const stub = await stubServer((req, res, n) => {
    if (n <= 2) { held.push(res); return; }   // never answers the first two
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"key":"ABCDEFGH","version":4,"meta":{},"data":null}');
  });
  const e = await createClient({ baseUrl: stub.url, timeoutMs: 300, retries: 0 }).open('ABCDEFGH').catch((x) => x);
  assert.ok(e instanceof SessiondNetworkError);
  assert.equal(e.timeout, true);
  assert.equal(e.code, 'timeout');
  const s = await createClient({ baseUrl: stub.url, timeoutMs: 300, retries: 2, retryBaseMs: 10 }).open('ABCDEFGH');
  assert.equal(s.version, 4);
  assert.equal(stub.hits.length, 3);
  for (const r of held) r.destroy();
  await stub.close();
});

// Seen failing: with update() not recognising its own unanswered write in
// the 409 that follows the retry, n ended at 2.
test('a lost answer is not applied twice: a retried save that had landed counts once', async () => {
  // The first answer to a save is cut after sessiond stored it; the client
  // retries, gets 409 with a document equal to what it sent, and keeps it.
  const sd0 = createClient({ baseUrl: BASE, ...fast });
  const s0 = await sd0.create({ data: { n: 0 } });
  let cut = true;
  const cutting = async (url, init) => {
    const r = await fetch(url, init);
    if (cut && init.method === 'POST' && new URL(url).pathname === '/api/save') { cut = false; await r.text(); throw new TypeError('connection reset'); }
    return r;
  };
  const sd = createClient({ baseUrl: BASE, ...fast, fetch: cutting });
  const s = await sd.open(s0.key, w(s0));
  await s.update((d) => { d.n += 1; });
  assert.deepEqual([(await onDisk(s.key)).data.n, s.version], [1, 2]);
  s0.close(); s.close();
});

test('offline: saves go to the outbox, delivered later by three-way merge without overwriting newer work', async () => {
  let online = false;
  const net = (url, init) => (online ? fetch(url, init) : Promise.reject(new TypeError('Failed to fetch')));
  const outbox = memoryOutbox();
  const sd0 = createClient({ baseUrl: BASE, ...fast });
  const s0 = await sd0.create({ data: { title: 'v1', notes: { x: 1 } } });
  online = true;
  const sd = createClient({ baseUrl: BASE, ...fast, retries: 0, fetch: net, outbox });
  const s = await sd.open(s0.key, w(s0));
  online = false;
  const statuses = [];
  s.on('status', (st) => statuses.push(st));
  s.change((d) => { d.notes.y = 2; d.title = 'offline title'; });
  await assert.rejects(s.flush(), SessiondNetworkError);
  assert.equal(s.status, 'offline');
  const [entry] = await outbox.all();
  assert.deepEqual([entry.key, entry.baseVersion, entry.data.notes], [s.key, 1, { x: 1, y: 2 }]);
  s.close();   // the page goes away while offline
  // Meanwhile, newer work elsewhere: another note, and another title.
  await s0.update((d) => { d.notes.z = 3; d.title = 'newer title'; });
  online = true;
  const later = createClient({ baseUrl: BASE, ...fast, fetch: net, outbox });
  assert.equal(await later.drainOutbox(), 1);
  const disk = await onDisk(s.key);
  assert.deepEqual(disk.data.notes, { x: 1, y: 2, z: 3 }, 'the offline note arrived, the newer one stayed');
  assert.equal(disk.data.title, 'newer title', 'a stale edit does not overwrite newer work');
  assert.deepEqual(await outbox.all(), []);
  s0.close();
});

test('watch(): a HEAD poll sees a newer version; no GET while nothing changed', async () => {
  const methods = [];
  const counting = (url, init) => { methods.push(init.method); return fetch(url, init); };
  const a = await createClient({ baseUrl: BASE, ...fast }).create({ data: { n: 1 } });
  const watcher = await createClient({ baseUrl: BASE, ...fast, fetch: counting }).open(a.key);
  methods.length = 0;
  const seen = [];
  const stop = watcher.watch((s) => seen.push(s.data.n), { intervalMs: 60 });
  await until(() => methods.length >= 3, 3000);
  assert.ok(methods.every((m) => m === 'HEAD'), methods.join(','));
  await a.save({ n: 2 });
  assert.ok(await until(() => seen.length > 0, 3000), 'the watcher saw the new version');
  assert.deepEqual([seen[0], watcher.version], [2, 2]);
  stop(); a.close(); watcher.close();
});

test('links: the token only in the fragment; parseLink reads them back', async () => {
  const sd = createClient({ baseUrl: BASE, ...fast });
  const s = await sd.create({});
  const share = s.shareLink('https://app.example/notes?x=1');
  const edit = s.editLink('https://app.example/notes?x=1');
  assert.equal(new URL(share).search, '?x=1');
  assert.equal(new URL(edit).search, '?x=1', 'nothing added to the query');
  assert.equal(new URL(share).hash, '#key=' + s.key);
  assert.deepEqual(parseLink(share), { key: s.key });
  assert.deepEqual(parseLink(edit), s.token ? { key: s.key, token: s.token } : { key: s.key, writable: true });
  assert.equal((await sd.openLink(edit)).canWrite, true);
  const ro = await sd.openLink(share);
  assert.equal(ro.canWrite, false);
  s.close(); ro.close();
});

test('merge helpers: merge3 and RFC 7386 merge patch', () => {
  assert.deepEqual(merge3({ a: 1, b: 1 }, { a: 2, b: 1 }, { a: 1, b: 3 }), { a: 2, b: 3 });
  assert.deepEqual(merge3({ a: 1 }, { a: 2 }, { a: 3 }), { a: 3 }, 'both changed: theirs wins');
  assert.deepEqual(merge3({ a: 1, b: 2 }, { b: 2 }, { a: 1, b: 2, c: 4 }), { b: 2, c: 4 }, 'a deletion carries');
  assert.deepEqual(merge3({ n: { x: 1 } }, { n: { x: 1, y: 2 } }, { n: { x: 1, z: 3 } }), { n: { x: 1, y: 2, z: 3 } });
  assert.deepEqual(mergePatch({ a: 1, b: { c: 2, d: 3 } }, { a: null, b: { c: null, e: 4 } }), { b: { d: 3, e: 4 } });
});

test('delete(): the session is gone, on disk and for load', async (t) => {
  if (!(await serverFeatures()).delete) { t.skip(MISSING.delete); return; }
  const sd = createClient({ baseUrl: BASE, ...fast });
  const s = await sd.create({ data: { a: 1 } });
  const r = await s.delete();
  assert.deepEqual(r, { key: s.key, deleted: true });
  assert.equal(await onDisk(s.key), null);
  await assert.rejects(sd.open(s.key), (e) => e.status === 404);
  const t2 = await sd.create({ data: {} });
  const stale = await sd.open(t2.key, w(t2));
  await t2.save({ b: 1 });
  await assert.rejects(stale.delete({ ifVersion: true }), (e) => e.status === 409);
  assert.ok(await onDisk(t2.key), 'a conditional delete on a stale version deletes nothing');
  t2.close(); stale.close();
});

test('expiresIn on create and on save sets the lifetime', async (t) => {
  if (!(await serverFeatures()).expiry) { t.skip(MISSING.expiry); return; }
  const sd = createClient({ baseUrl: BASE, ...fast });
  const s = await sd.create({ data: {}, expiresIn: 120 });
  const e1 = Date.parse((await onDisk(s.key)).expires);
  assert.ok(e1 > Date.now() + 60e3 && e1 < Date.now() + 130e3, `expires ${new Date(e1).toISOString()}`);
  await s.update((d) => { d.x = 1; }, { expiresIn: 600 });
  const e2 = Date.parse((await onDisk(s.key)).expires);
  assert.ok(e2 > Date.now() + 500e3, `expires ${new Date(e2).toISOString()}`);
  await s.save({ x: 2 }, { expiresIn: null });
  assert.equal((await onDisk(s.key)).expires, undefined);
  s.close();
});

test('sessiond.d.ts declares exactly what the module exports', async () => {
  const { readFile } = await import('node:fs/promises');
  const dts = await readFile(new URL('../sessiond.d.ts', import.meta.url), 'utf8');
  const declared = [...dts.matchAll(/^export declare (?:class|function) (\w+)/gm)].map((m) => m[1]).sort();
  const mod = await import('../sessiond.js');
  assert.deepEqual(declared, Object.keys(mod).sort());
});
