// The sessiond demo: a notes / to-do board on the browser client.
// Notes are kept by id ({notes: {id: {text, done, at}}}), so edits made in
// two tabs at once merge: each change is replayed on the newer document.
import { createClient, parseLink } from '/client/sessiond.js';

const $ = (id) => document.getElementById(id);
const STATUS = {
  loading: 'loading…', pending: 'editing…', saving: 'saving…', saved: 'saved',
  merged: 'conflict merged', offline: 'offline: kept, sent when back', error: 'error', readonly: 'read-only',
};
const sd = createClient();   // same origin as the page; pass {baseUrl} for another
let session;

function newId() {
  return crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2);
}

function showStatus(state, err) {
  const el = $('status');
  el.dataset.state = state;
  el.textContent = STATUS[state] || state;
  el.title = err ? err.message : '';
}

function render() {
  const notes = Object.entries((session.data && session.data.notes) || {})
    .sort((a, b) => a[1].at - b[1].at || (a[0] < b[0] ? -1 : 1));
  const ul = $('notes');
  ul.replaceChildren(...notes.map(([id, n]) => {
    const li = document.createElement('li');
    li.className = 'note' + (n.done ? ' done' : '');
    li.dataset.id = id;
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = !!n.done;
    box.disabled = !session.canWrite;
    box.setAttribute('aria-label', 'done');
    box.onchange = () => edit((d) => { if (d.notes[id]) d.notes[id].done = box.checked; });
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = n.text;
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'del';
    del.textContent = '×';
    del.title = 'Delete';
    del.hidden = !session.canWrite;
    del.onclick = () => edit((d) => { delete d.notes[id]; });
    li.append(box, text, del);
    return li;
  }));
  $('empty').hidden = notes.length > 0;
  $('key').textContent = session.key;
  $('version').textContent = 'version ' + session.version;
}

function edit(fn) {
  session.change((d) => { if (!d.notes) d.notes = {}; fn(d); });
  render();
}

async function start() {
  await sd.drainOutbox().catch(() => {});
  const link = parseLink(location.href);
  if (link.key) {
    session = await sd.openLink(location.href);
  } else {
    session = await sd.create({ data: { notes: {} }, meta: { app: 'notes-demo' } });
    history.replaceState(null, '', session.editLink(location.href));
  }
  const page = location.origin + location.pathname;
  $('share').value = session.shareLink(page);
  $('edit').value = session.canWrite ? session.editLink(page) : '(open the edit link to edit)';
  $('add').hidden = !session.canWrite;
  $('fork').hidden = session.canWrite;
  session.on('status', (st, err) => { showStatus(st, err); $('version').textContent = 'version ' + session.version; });
  session.on('saved', () => { $('version').textContent = 'version ' + session.version; });
  session.saveOnExit();
  session.watch(() => render(), { intervalMs: 3000 });
  showStatus(session.status);
  render();
  window.app = { session, client: sd };
  document.body.dataset.ready = '1';
}

$('add').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('text').value.trim();
  if (!text) return;
  const id = newId();
  edit((d) => { d.notes[id] = { text, done: false, at: Date.now() }; });
  $('text').value = '';
});

$('fork').addEventListener('click', async () => {
  const copy = await session.fork();
  location.href = copy.editLink(location.origin + location.pathname);
  location.reload();
});

for (const b of document.querySelectorAll('[data-copy]')) {
  b.addEventListener('click', async () => {
    const input = $(b.dataset.copy);
    try { await navigator.clipboard.writeText(input.value); b.textContent = 'Copied'; }
    catch { input.select(); b.textContent = 'Select + copy'; }
    setTimeout(() => { b.textContent = 'Copy'; }, 1500);
  });
}

start().catch((e) => { showStatus('error', e); $('empty').textContent = e.message; });
