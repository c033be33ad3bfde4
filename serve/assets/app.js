// bucketlens web UI: search, facets, a thumbnail grid, a detail view with boxes,
// the failed objects, live updates. Uses only the HTTP API; every key and label is
// put on the page as text (textContent), never as markup.

const $ = (id) => document.getElementById(id);
const PAGE = 60;

// `labels` are the facet filters, kept apart from the typed query and AND-ed with
// it: "Cat", or "-Cat" for "not Cat". `photo` is the open photo, `bucket/key`.
const state = {
  view: 'photos', q: '', labels: [], min: 0, bucket: '', prefix: '', model: '', photo: '', allLabels: false, sort: '', like: '',
  // 'meaning': the typed words are a phrase searched by meaning (`semantic=`), not labels.
  mode: 'label',
  hits: [], next: null, total: 0, loading: false, open: -1,
};

// --- URL: the search lives in it (bookmarks, sharing, Back) -----------------------
function readUrl() {
  const url = new URL(location.href);
  state.view = { '/failed': 'failed', '/duplicates': 'duplicates' }[url.pathname] ?? 'photos';
  state.q = url.searchParams.get('q') ?? '';
  state.min = Number(url.searchParams.get('min') ?? 0) || 0;
  state.bucket = url.searchParams.get('bucket') ?? '';
  state.model = url.searchParams.get('model') ?? '';
  state.prefix = url.searchParams.get('prefix') ?? '';
  state.labels = state.view === 'photos' ? url.searchParams.getAll('label').filter((l) => l.replace(/^-/, '')) : [];
  state.photo = url.searchParams.get('photo') ?? '';
  state.sort = SORTS.includes(url.searchParams.get('sort')) ? url.searchParams.get('sort') : '';
  // "More like this": the photos that look most like `bucket/key`, most alike first.
  state.like = state.view === 'photos' ? url.searchParams.get('like') ?? '' : '';
  state.mode = state.view === 'photos' && url.searchParams.get('mode') === 'meaning' ? 'meaning' : 'label';
}

// The orders the API knows. Unless one is chosen: the best match when labels are
// searched for, else the newest first, as a photo library shows its photos.
const SORTS = ['relevance', 'newest', 'oldest', 'taken', 'name'];
function asksForLabels() {
  const typed = terms(state.q).some((t) => !t.startsWith('-') && !QUALIFIED.test(t) && !/^(and|or|not|\*|\(|\))$/i.test(t));
  return typed || state.labels.some((l) => !l.startsWith('-'));
}
const sortInUse = () => state.sort || (asksForLabels() ? 'relevance' : 'newest');

// What decides the results: a change of the open photo alone searches nothing.
const searchKey = () => JSON.stringify([state.view, state.q, state.labels, state.min, state.bucket, state.prefix, state.model, state.sort, state.like, state.mode]);
const byMeaning = () => state.view === 'photos' && state.mode === 'meaning' && Boolean(state.q) && !state.like;

function urlOf(photo) {
  const url = new URL({ failed: '/failed', duplicates: '/duplicates' }[state.view] ?? '/', location.origin);
  if (state.q) url.searchParams.set('q', state.q);
  for (const label of state.labels) url.searchParams.append('label', label);
  if (state.min && state.view === 'photos') url.searchParams.set('min', String(state.min));
  if (state.bucket) url.searchParams.set('bucket', state.bucket);
  if (state.prefix) url.searchParams.set('prefix', state.prefix);
  if (state.model) url.searchParams.set('model', state.model);
  if (state.sort && state.view === 'photos') url.searchParams.set('sort', state.sort);
  if (state.like && state.view === 'photos') url.searchParams.set('like', state.like);
  if (state.mode === 'meaning' && state.view === 'photos') url.searchParams.set('mode', 'meaning');
  if (photo) url.searchParams.set('photo', photo);
  return url;
}

function writeUrl() {
  const url = urlOf(state.photo);
  if (url.href !== location.href) history.pushState(null, '', url);
}

function syncControls() {
  $('q').value = state.q;
  $('q').placeholder = state.view === 'failed' ? 'key prefix, e.g. 2024/trip/' : 'dog AND grass, -cat, name:IMG_2019';
  const meaning = state.view === 'photos' && state.mode === 'meaning';
  if (meaning) $('q').placeholder = 'a phrase: a rocket launch at night';
  $('q').setAttribute('aria-label', state.view === 'failed' ? 'Filter failed objects by key prefix' : meaning ? 'Search by meaning' : 'Search by label');
  $('mode').value = state.mode;
  $('mode').hidden = state.view !== 'photos';
  $('min').value = String(state.min);
  $('min-out').textContent = String(state.min);
  $('min').disabled = state.view === 'failed';
  $('view-photos').setAttribute('aria-current', state.view === 'photos' ? 'page' : 'false');
  $('view-failed').setAttribute('aria-current', state.view === 'failed' ? 'page' : 'false');
  $('view-duplicates').setAttribute('aria-current', state.view === 'duplicates' ? 'page' : 'false');
  const unlabeled = state.view === 'photos' && /^-has:labels?$/i.test(state.q.trim());
  $('view-unlabeled').setAttribute('aria-current', unlabeled ? 'page' : 'false');
  if (unlabeled) $('view-photos').setAttribute('aria-current', 'false');
  $('sort').value = sortInUse();
  // Photos like one come most alike first, whatever the order chosen.
  $('sort').disabled = Boolean(state.like) || byMeaning();
  document.body.dataset.view = state.view;
}

// --- API ------------------------------------------------------------------------
async function api(path, signal) {
  const response = await fetch(path, { headers: { Accept: 'application/json' }, signal });
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (response.status === 401) { location.href = '/login'; }
  if (!response.ok) throw new Error(body?.error ?? `${path}: HTTP ${response.status}`);
  return body;
}

// The typed query AND the facet filters, as one expression of the query language
// (a phrase searched by meaning is not part of it: the facets filter it).
function query() {
  // Quoted, so that two one-word labels stay two labels.
  const quoted = (name) => `"${name.replaceAll('"', '')}"`;
  const parts = state.labels.map((l) => (l.startsWith('-') ? `-${quoted(l.slice(1))}` : quoted(l)));
  if (state.q && !byMeaning()) parts.unshift(parts.length ? `(${state.q})` : state.q);
  return parts.join(' ');
}

function searchParams(cursor, limit) {
  const p = new URLSearchParams();
  if (state.view === 'failed') {
    p.set('state', 'failed');
    // A prefix as the page shows keys, `bucket/prefix`, names the bucket too.
    const [bucket, ...rest] = state.q.split('/');
    if (!state.bucket && rest.length && knownBuckets.includes(bucket)) { p.set('bucket', bucket); p.set('prefix', rest.join('/')); }
    else if (state.q) p.set('prefix', state.q);
  } else {
    const q = query();
    if (q) p.set('q', q);
    if (state.min) p.set('min_confidence', String(state.min));
    p.set('sort', sortInUse());
    if (state.like) p.set('like', state.like);
    else if (byMeaning()) p.set('semantic', state.q);
  }
  if (state.bucket) p.set('bucket', state.bucket);
  if (state.model) p.set('model_version', state.model);
  if (state.prefix && state.view === 'photos') p.set('prefix', state.prefix);
  if (state.allLabels) p.set('facet_limit', '2000');
  p.set('limit', String(limit ?? PAGE));
  if (cursor) { p.set('cursor', cursor); p.set('facets', 'false'); }
  return p;
}

// A key travels as one path segment (its slashes encoded), so no key can become
// `..` or another route.
const objectPath = (hit) => `${encodeURIComponent(hit.bucket)}/${encodeURIComponent(hit.key)}`;
const version = (hit) => encodeURIComponent(hit.etag ?? hit.version_id ?? '');
const thumbUrl = (hit, size) => `/api/thumbnails/${objectPath(hit)}?size=${size}&v=${version(hit)}`;
const imageUrl = (hit) => `/api/images/${objectPath(hit)}?v=${version(hit)}`;
// Formats every current browser shows; a TIFF or a HEIC is shown through its largest
// thumbnail (a JPEG, upright, the boxes in the same place) instead.
const SHOWN = ['jpeg', 'png', 'webp', 'gif', 'bmp', 'avif'];
// The detail view shows a screen-sized rendition (a GIF as it is, to keep it moving);
// "Open original" has the full one.
const screenUrl = (hit) => (hit.image?.format === 'gif' && SHOWN.includes('gif') ? imageUrl(hit) : thumbUrl(hit, 1024));

function showError(error) {
  $('error').textContent = error.message;
  $('error').hidden = false;
}

function clearError() { $('error').hidden = true; }

// --- search and paging -------------------------------------------------------------
let generation = 0;
let pending = null;

// While a search runs, the results of the one before are dimmed and marked busy: they
// are never shown as if they answered the new query. A newer search cancels it.
function waiting(on) {
  document.body.classList.toggle('searching', on);
  $('grid').setAttribute('aria-busy', String(on));
}

async function search({ keep = false } = {}) {
  if (state.view === 'duplicates') return duplicates();
  const mine = ++generation;
  const limit = keep ? Math.min(Math.max(state.hits.length, PAGE), 500) : PAGE;
  pending?.abort();
  pending = new AbortController();
  if (!keep) waiting(true);
  try {
    // `bucket/prefix` in Failed needs the bucket names: asked once.
    if (state.view === 'failed' && state.q.includes('/') && knownBuckets.length === 0) {
      knownBuckets = ((await api('/api/search?limit=1', pending.signal)).facets.buckets ?? []).map(([b]) => b);
    }
    const result = await api(`/api/search?${searchParams(null, limit)}`, pending.signal);
    if (mine !== generation) return;
    waiting(false);
    clearError();
    const openKey = state.open >= 0 ? keyOf(state.hits[state.open]) : null;
    state.hits = result.hits;
    state.next = result.next;
    state.total = result.total;
    renderFacets(result.facets);
    renderResults();
    if (openKey !== null) reopen(openKey);
    fillViewport();
  } catch (error) {
    if (mine === generation && error.name !== 'AbortError') showError(error);
  }
}

async function more() {
  if (!state.next || state.loading) return;
  state.loading = true;
  const mine = generation;
  try {
    const result = await api(`/api/search?${searchParams(state.next)}`);
    if (mine !== generation) return;
    const start = state.hits.length;
    state.hits.push(...result.hits);
    state.next = result.next;
    appendResults(result.hits, start);
  } catch (error) {
    showError(error);
  } finally {
    state.loading = false;
  }
  fillViewport();
}

// Loads more while the end of the list is on screen.
function fillViewport() {
  const rect = $('more').getBoundingClientRect();
  if (state.next && rect.top < innerHeight + 400) more();
}

let knownBuckets = [];

function go() {
  state.open = -1;
  state.photo = '';
  writeUrl();
  syncControls();
  search();
}

// --- rendering ----------------------------------------------------------------------
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

const keyOf = (hit) => `${hit.bucket}/${hit.key}`;
const pct = (c) => `${Math.round(c)}%`;

// The most specific labels: those no other label of the photo names as a parent
// ("Cat", not "Animal · Mammal · Carnivore").
function leafLabels(hit, n) {
  const parents = new Set(hit.labels.flatMap((l) => l.parents ?? []));
  return hit.labels.filter((l) => !parents.has(l.name)).sort((a, b) => b.confidence - a.confidence).slice(0, n);
}

// A long folder is cut in the middle, so both its start and its end show.
function middle(text, max) {
  if (text.length <= max) return text;
  const half = Math.floor((max - 1) / 2);
  return `${text.slice(0, half)}…${text.slice(text.length - half)}`;
}

const fileName = (hit) => hit.key.slice(hit.key.lastIndexOf('/') + 1) || hit.key;
const folderOf = (hit) => `${hit.bucket}/${hit.key.slice(0, hit.key.lastIndexOf('/') + 1)}`;
const photoHref = (hit) => urlOf(keyOf(hit)).href;

// A link, so that a middle click or Ctrl-click opens the photo in a new tab; a plain
// click opens it here.
function photoLink(hit, index, props, ...children) {
  return el('a', {
    ...props, href: photoHref(hit), 'data-key': keyOf(hit), title: `${hit.bucket}/${hit.key}`,
    onclick: (event) => {
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      openDetail(index);
    },
  }, ...children);
}

// The card's folder: a click shows that folder's photos.
function folderLink(hit) {
  const folder = el('span', { class: 'folder', role: 'link', title: `Photos in ${folderOf(hit)}`, text: middle(folderOf(hit), 34) });
  folder.addEventListener('click', (event) => {
    event.preventDefault();
    event.stopPropagation();
    state.bucket = hit.bucket;
    state.prefix = hit.key.slice(0, hit.key.lastIndexOf('/') + 1);
    go();
  });
  return folder;
}

// Where the photos shown are: All photos › bucket › folder › folder, each a link up.
function renderCrumbs() {
  const crumbs = $('crumbs');
  if (state.view !== 'photos' || (!state.bucket && !state.prefix)) { crumbs.hidden = true; return; }
  const to = (bucket, prefix) => () => { state.bucket = bucket; state.prefix = prefix; go(); };
  const parts = [el('button', { class: 'link', type: 'button', text: 'All photos', onclick: to('', '') })];
  if (state.bucket) parts.push(' › ', el('button', { class: 'link', type: 'button', text: state.bucket, onclick: to(state.bucket, '') }));
  const folders = state.prefix.split('/').filter(Boolean);
  folders.forEach((name, i) => {
    const prefix = `${folders.slice(0, i + 1).join('/')}/`;
    parts.push(' › ', el('button', { class: 'link', type: 'button', text: name, onclick: to(state.bucket, prefix) }));
  });
  crumbs.replaceChildren(...parts);
  crumbs.hidden = false;
}

function card(hit, index) {
  const labels = el('span', { class: 'card-labels', text: leafLabels(hit, 3).map((l) => l.name).join(' · ') });
  const img = el('img', { loading: 'lazy', alt: hit.key, src: thumbUrl(hit, 320), srcset: `${thumbUrl(hit, 320)} 1x, ${thumbUrl(hit, 640)} 2x`, decoding: 'async' });
  img.addEventListener('error', () => img.classList.add('broken'), { once: true });
  const alike = hit.similarity == null ? '' : el('span', { class: 'alike', text: `${Math.round(hit.similarity * 100)}% alike` });
  const line = matchingLine(hit);
  const said = line ? el('span', { class: 'card-text', text: `“${line}”` }) : '';
  return photoLink(hit, index, { class: 'card' },
    img, el('span', { class: 'key', text: fileName(hit) }), folderLink(hit), labels, said, alike);
}

// The words a `text:` query asks for (`text:exit`, `text:"gare du nord"`), lowercased.
function textWanted() {
  const found = [];
  for (const m of (state.q ?? '').matchAll(/text:(?:"([^"]*)"|(\S+))/gi)) found.push((m[1] ?? m[2]).toLowerCase());
  return found.filter((w) => w.trim());
}

// A line of the photo's text holding what a `text:` query asks for, as read.
function matchingLine(hit) {
  const wanted = textWanted();
  if (!wanted.length) return '';
  const fold = (t) => t.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
  const line = (hit.text_lines ?? []).find((l) => wanted.some((w) => fold(l.text).includes(fold(w))));
  return line ? line.text : '';
}

function failedRow(hit, index) {
  const when = hit.labeled_at ? new Date(hit.labeled_at).toLocaleString() : '';
  return el('tr', { 'data-key': keyOf(hit) },
    el('td', {}, photoLink(hit, index, { class: 'link', text: `${hit.bucket}/${hit.key}` })),
    el('td', {}, el('code', { text: hit.error?.code ?? '' })),
    el('td', { text: hit.error?.message ?? '' }),
    el('td', { text: when }));
}

// --- duplicates -------------------------------------------------------------------
// The groups side by side, the one to keep first, with what each group and all of
// them would free. Opening a member opens it in the photos view.
async function duplicates() {
  const mine = ++generation;
  pending?.abort();
  pending = new AbortController();
  waiting(true);
  const p = new URLSearchParams();
  if (state.bucket) p.set('bucket', state.bucket);
  if (state.prefix) p.set('prefix', state.prefix);
  try {
    const report = await api(`/api/duplicates?${p}`, pending.signal);
    if (mine !== generation) return;
    waiting(false);
    clearError();
    renderDuplicates(report);
  } catch (error) {
    if (mine === generation && error.name !== 'AbortError') showError(error);
  }
}

function member(m, keep) {
  const hit = { bucket: m.bucket, key: m.key };
  const img = el('img', { loading: 'lazy', alt: m.key, src: thumbUrl(hit, 320), decoding: 'async' });
  const facts = [size(m.size), m.width && m.height ? `${m.width}×${m.height}` : '', m.storage_class ?? ''].filter(Boolean).join(' · ');
  return el('a', { class: `card member${keep ? ' keep' : ''}`, href: `/?photo=${encodeURIComponent(keyOf(hit))}` },
    img, el('span', { class: 'key', text: `${m.bucket}/${m.key}` }), el('span', { class: 'facts', text: facts }),
    el('span', { class: 'badge', text: keep ? 'keep' : 'copy' }));
}

function renderDuplicates(report) {
  for (const id of ['grid', 'failed', 'empty']) $(id).hidden = true;
  state.hits = []; state.next = null; state.total = 0;
  renderChips();
  renderCrumbs();
  const groups = report.groups ?? [];
  $('summary').textContent = `${groups.length.toLocaleString()} group${groups.length === 1 ? '' : 's'} · ${size(report.total_reclaimable_bytes)} reclaimable by keeping the largest of each`;
  const dupes = $('dupes');
  dupes.hidden = false;
  dupes.replaceChildren(...groups.map((g) => el('section', { class: 'group', 'data-kind': g.kind },
    el('h2', { text: `${g.kind === 'exact' ? 'Exact copies' : 'Near duplicates'} · ${g.members.length} files · ${size(g.reclaimable_bytes)} reclaimable` }),
    el('div', { class: 'members' }, ...g.members.map((m, i) => member(m, i === 0))))));
  if (groups.length === 0) dupes.replaceChildren(el('p', { class: 'empty', text: report.unhashed ? `No duplicates among the hashed photos (${report.unhashed} labeled before hashes: relabel them to compare them too).` : 'No duplicates: every photo is one of a kind.' }));
}

// Where else the open photo is: its copies, most alike first.
async function renderCopies(hit) {
  const list = $('detail-copies');
  list.replaceChildren();
  list.hidden = true;
  $('detail-copies-title').hidden = true;
  if (hit.state && hit.state !== 'labeled') return;
  try {
    const found = await api(`/api/similar/${objectPath(hit)}`);
    if (state.photo !== keyOf(hit) && state.open >= 0 && keyOf(state.hits[state.open]) !== keyOf(hit)) return;
    list.replaceChildren(...found.hits.map((m) => el('li', {},
      el('a', { href: `/?photo=${encodeURIComponent(`${m.bucket}/${m.key}`)}`, text: `${m.bucket}/${m.key}` }),
      el('span', { class: 'conf', text: m.exact ? 'the same bytes' : `${Math.round(m.similarity * 100)}% alike` }))));
    list.hidden = found.hits.length === 0;
    $('detail-copies-title').hidden = found.hits.length === 0;
  } catch { /* the photo's page stands without its copies */ }
}

function renderResults() {
  $('dupes').hidden = true;
  const failed = state.view === 'failed';
  $('grid').replaceChildren();
  $('failed').querySelector('tbody').replaceChildren();
  $('grid').hidden = failed;
  $('failed').hidden = !failed || state.total === 0;
  appendResults(state.hits, 0);
  renderChips();
  renderCrumbs();
  const noun = failed ? 'failed object' : 'photo';
  $('summary').textContent = `${state.total.toLocaleString()} ${noun}${state.total === 1 ? '' : 's'}`;
  if (byMeaning() && !failed) {
    $('summary').textContent = `${state.hits.length.toLocaleString()} by meaning, best first: “${state.q}” · `;
    $('summary').append(el('button', { class: 'link', type: 'button', text: 'search by label instead', onclick: () => { state.mode = 'label'; go(); } }));
  }
  if (state.like && !failed) {
    $('summary').textContent = `${state.hits.length.toLocaleString()} most like ${state.like} · `;
    $('summary').append(el('button', { class: 'link', type: 'button', text: 'show all photos', onclick: () => { state.like = ''; go(); } }));
  }
  const empty = $('empty');
  empty.hidden = state.total !== 0;
  if (state.total === 0) {
    const filtered = state.q || state.labels.length || state.bucket || state.prefix || state.model || (state.min && !failed);
    if (failed) empty.replaceChildren(el('p', { text: filtered ? 'No failed object matches.' : 'No failed objects: every image was labeled.' }));
    else if (byMeaning()) {
      empty.replaceChildren(el('p', { text: `No photo is close enough in meaning to “${state.q}”.` }), el('p', { text: 'Try other words, or search by label.' }));
    }
    else if (filtered) {
      empty.replaceChildren(el('p', { text: `No photo matches ${state.q || 'these filters'}.` }), el('p', { text: 'Try fewer labels or a lower min confidence.' }));
      offerFileNames(empty);
      offerNearest(empty);
    }
    else empty.replaceChildren(
      el('p', { text: 'Nothing indexed yet.' }),
      el('p', {}, 'Run ', el('code', { text: 'bucketlens index DIR' }), ' (add ', el('code', { text: '--watch' }), ' to follow changes): photos show up here as they are labeled.'));
  }
}

// On no match for plain words: the same words searched in file names.
function offerFileNames(empty) {
  const words = terms(state.q);
  if (words.length !== 1 || /^-|^\*$/.test(words[0]) || QUALIFIED.test(words[0])) return;
  const text = words[0].replaceAll('"', '');
  const asName = `name:${/\s/.test(text) ? `"${text}"` : text}`;
  empty.append(el('p', { class: 'names' }, 'Search file names instead: ',
    el('button', { class: 'link', type: 'button', text: asName, onclick: () => { state.q = asName; go(); } })));
}

// On no match: the labels spelled most like each word of the query, to search instead.
async function offerNearest(empty) {
  const asked = state.q;
  const words = terms(asked).filter((t) => !QUALIFIED.test(t)).map((t) => t.replace(/^-/, '').replace(/[()"]/g, '')).filter((w) => w && !/^(and|or|not)$/i.test(w));
  const offers = [];
  for (const word of words.slice(0, 5)) {
    try {
      for (const [name] of await api(`/api/suggest?near=1&q=${encodeURIComponent(word)}`)) {
        if (!offers.some(([, n]) => n === name)) offers.push([word, name]);
      }
    } catch { return; }
  }
  if (state.q !== asked || state.total !== 0 || offers.length === 0) return;
  const replace = (word, name) => {
    state.q = terms(state.q).map((t) => (t.replace(/^-/, '') === word ? `${t.startsWith('-') ? '-' : ''}${quote(name)}` : t)).join(' ');
    go();
  };
  empty.append(el('p', { class: 'nearest' }, 'Did you mean ',
    ...offers.slice(0, 6).flatMap(([word, name], i) => [i ? ', ' : '', el('button', { class: 'link', type: 'button', text: name, onclick: () => replace(word, name) })]), '?'));
}

function appendResults(hits, start) {
  if (state.view === 'failed') {
    const body = $('failed').querySelector('tbody');
    hits.forEach((hit, i) => body.append(failedRow(hit, start + i)));
  } else {
    const timeline = sortInUse() === 'taken';
    hits.forEach((hit, i) => {
      // By date taken, a timeline: a heading wherever the month changes.
      const month = monthOf(hit);
      if (timeline && (start + i === 0 || monthOf(state.hits[start + i - 1]) !== month)) {
        $('grid').append(el('h3', { class: 'month', text: monthName(month) }));
      }
      $('grid').append(card(hit, start + i));
    });
  }
}

// `2019-07` of when a photo was taken (by its camera's clock), or '' if unknown.
const monthOf = (hit) => (/^(\d{4}-\d{2})/.exec(hit?.metadata?.taken_at ?? '') ?? ['', ''])[1];
function monthName(month) {
  if (!month) return 'Date taken unknown';
  const [y, m] = month.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, 1)).toLocaleDateString(undefined, { year: 'numeric', month: 'long', timeZone: 'UTC' });
}

// Query terms: words, "quoted names", field:"quoted values", with an optional leading '-'.
const terms = (q) => q.match(/-?(?:[a-z]+:)?"[^"]*"|\S+/gi) ?? [];
// The field qualifiers of the query language: a term with one is no label.
const QUALIFIED = /^-?(name|has|year|taken|camera|lens|keyword|country|city|place):/i;
const quote = (name) => (/[\s()"]/.test(name) ? `"${name.replaceAll('"', '')}"` : name);
const same = (a, b) => a.replaceAll('"', '').toLowerCase() === b.replaceAll('"', '').toLowerCase();

function labelState(name) {
  if (state.labels.includes(name)) return 'include';
  if (state.labels.includes(`-${name}`)) return 'exclude';
  return '';
}

// Click: only that label; again: not that label; again: no filter.
function toggleLabel(name) {
  const current = labelState(name);
  state.labels = state.labels.filter((l) => l.replace(/^-/, '') !== name);
  if (current === '') state.labels.push(name);
  else if (current === 'include') state.labels.push(`-${name}`);
  go();
}

// The active filters as chips, each removed by its ×.
function renderChips() {
  const chips = [];
  const chip = (text, remove) => el('button', { class: 'chip', type: 'button', 'aria-label': `Remove filter ${text}`, onclick: remove },
    el('span', { text }), el('span', { class: 'x', 'aria-hidden': 'true', text: '×' }));
  for (const label of state.labels) {
    const text = label.startsWith('-') ? `not ${label.slice(1)}` : label;
    chips.push(chip(text, () => { state.labels = state.labels.filter((l) => l !== label); go(); }));
  }
  if (state.bucket) chips.push(chip(`bucket ${state.bucket}`, () => { state.bucket = ''; go(); }));
  if (state.model) chips.push(chip(`model ${state.model}`, () => { state.model = ''; go(); }));
  if (state.min && state.view === 'photos') chips.push(chip(`≥ ${state.min}%`, () => { state.min = 0; go(); }));
  $('chips').replaceChildren(...chips);
  $('chips').hidden = chips.length === 0;
}

function facetList(id, values, stateOf, toggle) {
  const list = $(id);
  list.replaceChildren();
  for (const [name, count] of values ?? []) {
    const mark = stateOf(name);
    const button = el('button', { type: 'button', class: `facet ${mark}`, 'aria-pressed': mark === '' ? 'false' : 'true', onclick: () => toggle(name) },
      el('span', { class: 'facet-name', text: mark === 'exclude' ? `not ${name}` : name }),
      el('span', { class: 'count', text: Number(count).toLocaleString() }));
    list.append(el('li', {}, button));
  }
  list.closest('section').hidden = list.children.length === 0;
}

// A metadata facet's filter is a qualifier in the typed query (`year:2019`), so the
// search box shows it and it can be edited there.
const qualifier = (field, value) => `${field}:${quote(String(value))}`;
function qualifierState(field, value) {
  const want = qualifier(field, value);
  return terms(state.q).some((t) => same(t, want)) ? 'include' : '';
}
function toggleQualifier(field, value) {
  const want = qualifier(field, value);
  const rest = terms(state.q).filter((t) => !same(t, want));
  state.q = (rest.length < terms(state.q).length ? rest : [...rest, want]).join(' ');
  go();
}

function renderFacets(facets) {
  // A filter stays in the list (an excluded label has no count left) to be clicked off.
  const labels = [...(facets.labels ?? [])];
  for (const label of state.labels) {
    const name = label.replace(/^-/, '');
    if (!labels.some(([n]) => n === name)) labels.unshift([name, 0]);
  }
  facetList('facet-labels', state.view === 'failed' ? [] : labels, labelState, toggleLabel);
  // The counts stop at 50 labels: the rest on demand.
  $('all-labels').hidden = state.view === 'failed' || state.allLabels || (facets.labels ?? []).length < 50;
  knownBuckets = (facets.buckets ?? []).map(([b]) => b);
  for (const [id, field, values] of [['facet-years', 'year', facets.years], ['facet-cameras', 'camera', facets.cameras], ['facet-countries', 'country', facets.countries]]) {
    facetList(id, state.view === 'failed' ? [] : values, (v) => qualifierState(field, v), (v) => toggleQualifier(field, v));
  }
  facetList('facet-buckets', facets.buckets, (b) => (state.bucket === b ? 'include' : ''), (b) => { state.bucket = state.bucket === b ? '' : b; go(); });
  facetList('facet-models', facets.models, (m) => (state.model === m ? 'include' : ''), (m) => { state.model = state.model === m ? '' : m; go(); });
}

// --- detail ---------------------------------------------------------------------------
function size(bytes) {
  if (bytes == null) return '';
  const units = ['B', 'KB', 'MB', 'GB'];
  let n = bytes; let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u += 1; }
  return `${n.toFixed(u ? 1 : 0)} ${units[u]}`;
}

function renderBoxes(hit) {
  const boxes = $('boxes');
  boxes.replaceChildren();
  boxes.hidden = !$('show-boxes').checked;
  const place = (box, b) => {
    box.style.left = `${b.left * 100}%`;
    box.style.top = `${b.top * 100}%`;
    box.style.width = `${b.width * 100}%`;
    box.style.height = `${b.height * 100}%`;
    boxes.append(box);
  };
  // A line of text is boxed with what it says (the Text label's boxes are these).
  const lines = hit.text_lines ?? [];
  for (const label of hit.labels) {
    if (label.name === 'Text' && lines.length) continue;
    for (const instance of label.instances ?? []) {
      place(el('div', { class: 'box', 'data-label': label.name },
        el('span', { text: `${label.name} ${pct(instance.confidence)}` })), instance.bounding_box);
    }
  }
  const wanted = matchingLine(hit);
  for (const line of lines) {
    const box = el('div', { class: 'box text-box', 'data-label': 'Text', title: `${line.text} (${pct(line.confidence)})` },
      el('span', { text: line.text }));
    if (line.text === wanted) box.classList.add('matched');
    place(box, line.bounding_box);
  }
}

// The grid's thumbnail at once (it is cached), the screen-sized rendition when it has
// loaded, and the boxes only over the image they belong to.
let showing = 0;
function showImage(hit) {
  const mine = ++showing;
  const img = $('detail-img');
  // The same rendition already shown (a live refresh): only the boxes again.
  if (!img.hidden && img.complete && img.src === new URL(screenUrl(hit), location.href).href) { renderBoxes(hit); return; }
  $('boxes').replaceChildren();
  $('unshown').hidden = true;
  img.hidden = false;
  img.alt = hit.key;
  img.src = thumbUrl(hit, 320);
  const full = new Image();
  full.addEventListener('load', () => {
    if (mine !== showing) return;
    img.src = screenUrl(hit);
    img.decode().catch(() => {}).then(() => { if (mine === showing) renderBoxes(hit); });
  });
  full.addEventListener('error', () => { if (mine === showing) unshown(hit); });
  full.src = screenUrl(hit);
}

// An image that cannot be shown says so, and offers the original and another try.
function unshown(hit) {
  $('detail-img').hidden = true;
  const why = hit.error ? `It could not be read: ${hit.error.message}` : 'It could not be loaded just now.';
  $('unshown').replaceChildren(
    el('p', { text: `This image cannot be shown. ${why}` }),
    el('p', {},
      el('a', { href: imageUrl(hit), target: '_blank', rel: 'noopener', text: 'Open the original' }), ' · ',
      el('button', { class: 'link', type: 'button', text: 'Retry', onclick: () => showImage(hit) })));
  $('unshown').hidden = false;
}

function renderDetail(hit) {
  showImage(hit);
  $('detail-key').textContent = `${hit.bucket}/${hit.key}`;
  const labels = $('detail-labels');
  labels.replaceChildren();
  for (const label of [...hit.labels].sort((a, b) => b.confidence - a.confidence)) {
    const bar = el('span', { class: 'bar' }, el('span', {}));
    bar.firstChild.style.width = `${Math.max(0, Math.min(100, label.confidence))}%`;
    const parents = label.parents?.length ? el('span', { class: 'parents', text: `in ${label.parents.join(', ')}` }) : '';
    labels.append(el('li', {},
      el('button', { class: 'link label-name', type: 'button', text: label.name, title: `Search ${label.name}`, onclick: () => { state.q = ''; state.labels = [label.name]; go(); $('detail').close(); } }),
      el('span', { class: 'conf', text: `${label.confidence.toFixed(1)}%` }), bar, parents));
  }
  if (hit.labels.length === 0) labels.append(el('li', { text: hit.error ? 'not labeled' : 'no labels' }));
  const lines = hit.text_lines ?? [];
  $('detail-text').replaceChildren(...lines.map((l) => el('li', { text: l.text, title: `${pct(l.confidence)} sure` })));
  $('detail-text').hidden = lines.length === 0;
  $('detail-text-title').hidden = lines.length === 0;
  const rows = [
    ['bucket', hit.bucket], ['key', hit.key], ['size', size(hit.size)],
    ['last modified', hit.last_modified ? new Date(hit.last_modified).toLocaleString() : ''],
    ['etag', hit.etag ?? ''], ['version', hit.version_id ?? ''],
    ['image', hit.image ? `${hit.image.format} ${hit.image.width}×${hit.image.height}` : ''],
    ['model', `${hit.model.name} ${hit.model.version}`],
    ['labeled at', hit.labeled_at ? new Date(hit.labeled_at).toLocaleString() : ''],
  ];
  if (hit.error) rows.push(['error', `${hit.error.code}: ${hit.error.message}`]);
  const photo = photoRows(hit.metadata ?? {});
  $('detail-photo').replaceChildren(...photo.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]));
  $('detail-photo').hidden = photo.length === 0;
  $('detail-photo-title').hidden = photo.length === 0;
  $('detail-meta').replaceChildren(...rows.filter(([, v]) => v).flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
  $('prev').disabled = state.open <= 0;
  $('next').disabled = state.open < 0 || (state.open >= state.hits.length - 1 && !state.next);
  $('open-original').href = imageUrl(hit);
  $('download').href = imageUrl(hit);
  $('download').setAttribute('download', fileName(hit));
  $('more-like').hidden = hit.state !== 'labeled';
  $('more-like').onclick = () => { state.like = `${hit.bucket}/${hit.key}`; go(); $('detail').close(); };
  renderCopies(hit);
}

// What the photo says about itself, row by row; a camera, a place, a keyword is a link
// that searches for it.
function photoRows(m) {
  const search = (text, q) => el('button', { class: 'link', type: 'button', text, title: `Search ${q}`, onclick: () => { state.q = q; state.labels = []; go(); $('detail').close(); } });
  const rows = [];
  if (m.taken_at) {
    const [date, time = ''] = m.taken_at.split('T');
    const zone = /[+-]\d\d:\d\d$|Z$/.test(time) ? '' : ' (camera clock)';
    rows.push(['taken', `${date} ${time.slice(0, 8)}${time.slice(8)}${zone}`.trim()]);
  }
  const camera = [m.camera?.make, m.camera?.model].filter(Boolean);
  if (camera.length) {
    const name = camera.length === 2 && camera[1].toLowerCase().startsWith(camera[0].toLowerCase()) ? camera[1] : camera.join(' ');
    rows.push(['camera', search(name, qualifier('camera', name))]);
  }
  if (m.lens) rows.push(['lens', m.lens]);
  const e = m.exposure ?? {};
  const shutter = e.exposure_time_s ? (e.exposure_time_s < 1 ? `1/${Math.round(1 / e.exposure_time_s)} s` : `${round(e.exposure_time_s)} s`) : '';
  // The record holds 32-bit floats: 5.6 comes back as 5.599999904632568.
  const round = (x) => Number(Number(x).toPrecision(4));
  const exposure = [e.focal_length_mm && `${round(e.focal_length_mm)} mm`, e.f_number && `f/${round(e.f_number)}`, shutter, e.iso && `ISO ${e.iso}`].filter(Boolean);
  if (exposure.length) rows.push(['exposure', exposure.join(' · ')]);
  if (m.place) {
    const where = [m.place.city, m.place.region, m.place.country].filter((p, i, all) => p && all.indexOf(p) === i).join(', ');
    rows.push(['place', search(where, qualifier('city', m.place.city))]);
  }
  if (m.gps) rows.push(['position', `${m.gps.lat.toFixed(5)}, ${m.gps.lon.toFixed(5)}${m.gps.alt != null ? ` · ${Math.round(m.gps.alt)} m` : ''}`]);
  if (m.title) rows.push(['title', m.title]);
  if (m.caption) rows.push(['caption', m.caption]);
  if (m.keywords?.length) {
    const links = m.keywords.flatMap((k, i) => [i ? ', ' : '', search(k, qualifier('keyword', k))]);
    rows.push(['keywords', el('span', {}, ...links)]);
  }
  if (m.rating != null) rows.push(['rating', `${'★'.repeat(m.rating)}${'☆'.repeat(Math.max(0, 5 - m.rating))}`]);
  return rows;
}

// The open photo is in the URL: a link to it opens it, and Back closes only it.
function showPhoto(hit) {
  const photo = keyOf(hit);
  const url = urlOf(photo);
  if (history.state?.photo) history.replaceState({ photo: true }, '', url);
  else if (url.href !== location.href) history.pushState({ photo: true }, '', url);
  state.photo = photo;
  renderDetail(hit);
  if (!$('detail').open) $('detail').showModal();
}

function openDetail(index) {
  const hit = state.hits[index];
  if (!hit) return;
  state.open = index;
  showPhoto(hit);
}

// A photo named by the URL: from the results, or read on its own.
async function openPhoto(photo) {
  const index = state.hits.findIndex((h) => keyOf(h) === photo);
  if (index >= 0) { state.open = index; renderDetail(state.hits[index]); }
  else {
    const slash = photo.indexOf('/');
    try {
      const hit = await api(`/api/objects/${encodeURIComponent(photo.slice(0, slash))}/${encodeURIComponent(photo.slice(slash + 1))}`);
      if (state.photo !== photo) return;
      state.open = -1;
      renderDetail(hit);
    } catch (error) { showError(error); return; }
  }
  if (!$('detail').open) $('detail').showModal();
}

function closedPhoto() {
  state.open = -1;
  state.photo = '';
  if (history.state?.photo) history.back();
  else if (new URL(location.href).searchParams.has('photo')) history.replaceState(null, '', urlOf(''));
}

async function step(delta) {
  const target = state.open + delta;
  if (target >= state.hits.length && state.next) await more();
  if (target >= 0 && target < state.hits.length) openDetail(target);
}

function reopen(key) {
  const index = state.hits.findIndex((h) => keyOf(h) === key);
  if (index >= 0) { state.open = index; renderDetail(state.hits[index]); }
  else if ($('detail').open) { $('detail-key').textContent = `${key} — removed, or no longer matches`; state.open = -1; }
}

// --- suggestions -------------------------------------------------------------------------
let suggestTimer = 0;
let suggestion = -1;

function lastTerm() {
  const match = $('q').value.match(/(?:^|\s)(-?\(?)([^\s"()-][^\s"()]*)$/);
  return match ? match[2] : '';
}

function hideSuggestions() { $('suggestions').hidden = true; suggestion = -1; }

function pickSuggestion(name) {
  const term = lastTerm();
  const q = $('q').value;
  $('q').value = `${q.slice(0, q.length - term.length)}${quote(name)} `;
  hideSuggestions();
  $('q').focus();
}

async function suggest() {
  // Label names are no help to a phrase searched by meaning.
  const term = state.view === 'photos' && state.mode !== 'meaning' ? lastTerm() : '';
  if (!term) { hideSuggestions(); return; }
  try {
    const names = await api(`/api/suggest?q=${encodeURIComponent(term)}`);
    const list = $('suggestions');
    list.replaceChildren(...names.map(([name, count], i) => el('li', {
      role: 'option', id: `suggestion-${i}`, 'data-name': name,
      onmousedown: (event) => { event.preventDefault(); pickSuggestion(name); },
    }, el('span', { text: name }), el('span', { class: 'count', text: String(count) }))));
    list.hidden = names.length === 0;
    suggestion = -1;
  } catch { hideSuggestions(); }
}

function moveSuggestion(delta) {
  const items = [...$('suggestions').children];
  if ($('suggestions').hidden || items.length === 0) return false;
  suggestion = (suggestion + delta + items.length) % items.length;
  items.forEach((item, i) => item.setAttribute('aria-selected', String(i === suggestion)));
  $('q').setAttribute('aria-activedescendant', items[suggestion].id);
  return true;
}

// --- status bar and live changes ------------------------------------------------------
// In words a user knows; the operator's figures (DLQ, lag per group) in the tooltip.
function renderStatus(status) {
  const parts = [];
  const failed = status.failed ?? 0;
  if (status.documents != null) {
    const photos = status.documents - failed;
    parts.push(`${photos.toLocaleString()} photo${photos === 1 ? '' : 's'}`);
  }
  if (failed > 0) parts.push(`${failed.toLocaleString()} could not be read (see Failed)`);
  const behind = (status.groups ?? []).reduce((a, g) => a + g.lag, 0);
  if (behind > 0) parts.push(`${behind.toLocaleString()} change${behind === 1 ? '' : 's'} still to label or index`);
  const dlq = Object.values(status.dlq ?? {}).reduce((a, b) => a + b, 0);
  const detail = [`dead-letter queues: ${dlq.toLocaleString()}`];
  for (const group of status.groups ?? []) detail.push(`lag ${group.group}: ${group.lag.toLocaleString()}`);
  $('status').textContent = parts.join(' · ');
  $('status').title = detail.join('\n');
  $('status').classList.toggle('busy', behind > 0);
}

async function pollStatus() {
  try { renderStatus(await api('/api/status')); } catch (error) { $('status').textContent = `status unavailable: ${error.message}`; }
  setTimeout(pollStatus, 2000);
}

let refreshTimer = 0;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => search({ keep: true }), 250);
}

// One stream per browser, not per tab: HTTP/1.1 allows 6 connections to a host, so a
// stream in every tab would starve the 7th tab's requests. The tab holding the
// 'bucketlens-live' lock reads /api/events and relays it to the others over a
// BroadcastChannel; when it closes, another tab takes the lock and the stream. A page
// leaving (into the back/forward cache too) closes its stream and frees the lock.
// Without those APIs (plain HTTP off localhost is not a secure context), each tab
// has its own stream.
const relay = 'BroadcastChannel' in window ? new BroadcastChannel('bucketlens-live') : null;
const shared = relay !== null && 'locks' in navigator;
let stream = null;
let releaseLock = null;
let streamUp = false;

function setLive(on) { document.body.classList.toggle('live', on); }

// A change, or the stream back after an outage (a server restart): search again.
function onLive(message) {
  if (message === 'change') refreshSoon();
  if (message === 'up') setLive(true);
  if (message === 'down') setLive(false);
  if (message === 'back') { setLive(true); clearError(); refreshSoon(); }
  if (message === 'ask' && stream) relay.postMessage(streamUp ? 'up' : 'down');
}

function say(message) {
  onLive(message);
  if (shared) relay.postMessage(message);
}

function openStream() {
  stream = new EventSource('/api/events');
  let broken = false;
  stream.addEventListener('change', () => say('change'));
  stream.addEventListener('lagged', () => say('change'));
  stream.addEventListener('open', () => { streamUp = true; say(broken ? 'back' : 'up'); broken = false; });
  stream.addEventListener('error', () => { streamUp = false; broken = true; say('down'); });
}

let lockWait = null;

function closeStream() {
  lockWait?.abort();
  lockWait = null;
  stream?.close();
  stream = null;
  streamUp = false;
  releaseLock?.();
  releaseLock = null;
}

function live() {
  if (!shared) { openStream(); return; }
  lockWait = new AbortController();
  const holding = () => new Promise((release) => { releaseLock = release; openStream(); });
  navigator.locks.request('bucketlens-live', { signal: lockWait.signal }, holding).catch(() => {});
  relay.postMessage('ask');
}

// --- keyboard ---------------------------------------------------------------------------
const typing = (target) => target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target?.isContentEditable;

// Arrow keys move the focus across the cards: a row is the cards at one height.
function moveInGrid(card, key) {
  const cards = [...$('grid').querySelectorAll('.card')];
  const at = cards.indexOf(card);
  let target = cards[Math.min(cards.length - 1, Math.max(0, at + (key === 'ArrowRight' ? 1 : -1)))];
  if (key === 'ArrowDown' || key === 'ArrowUp') {
    // The row above or below (rows differ in length in the timeline), nearest in column.
    const down = key === 'ArrowDown';
    const rows = [...new Set(cards.map((c) => c.offsetTop))].sort((a, b) => a - b);
    const row = rows[rows.indexOf(card.offsetTop) + (down ? 1 : -1)];
    const inRow = cards.filter((c) => c.offsetTop === row);
    target = inRow.reduce((best, c) => (Math.abs(c.offsetLeft - card.offsetLeft) < Math.abs(best.offsetLeft - card.offsetLeft) ? c : best), inRow[0] ?? card);
  }
  target?.focus();
  if (target === cards.at(-1)) more();
}

function keyboard(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const card = event.target.closest?.('.card');
  if (card && ['ArrowRight', 'ArrowLeft', 'ArrowDown', 'ArrowUp'].includes(event.key)) {
    event.preventDefault();
    moveInGrid(card, event.key);
    return;
  }
  if (typing(event.target) || $('detail').open || $('help').open) return;
  if (event.key === '/') { event.preventDefault(); $('q').focus(); $('q').select(); }
  if (event.key === '?') { event.preventDefault(); $('help').showModal(); }
}

// --- wiring ------------------------------------------------------------------------------
function start() {
  readUrl();
  syncControls();
  $('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    if (suggestion >= 0) { pickSuggestion($('suggestions').children[suggestion].dataset.name); return; }
    hideSuggestions();
    state.q = $('q').value.trim();
    go();
  });
  $('mode').addEventListener('change', () => {
    state.mode = $('mode').value === 'meaning' ? 'meaning' : 'label';
    state.q = $('q').value.trim();
    hideSuggestions();
    go();
  });
  $('q').addEventListener('input', () => { clearTimeout(suggestTimer); suggestTimer = setTimeout(suggest, 120); });
  $('q').addEventListener('blur', () => setTimeout(hideSuggestions, 100));
  $('q').addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown' && moveSuggestion(1)) event.preventDefault();
    if (event.key === 'ArrowUp' && moveSuggestion(-1)) event.preventDefault();
    // Esc closes the suggestions and keeps the query (a search box clears itself
    // on Esc otherwise); with none open, it clears the box as usual.
    if (event.key === 'Escape' && !$('suggestions').hidden) { event.preventDefault(); hideSuggestions(); }
  });
  $('min').addEventListener('input', () => { $('min-out').textContent = $('min').value; });
  // Arrow keys change the slider a step at a time: one search once they stop.
  let minTimer = 0;
  $('min').addEventListener('change', () => {
    clearTimeout(minTimer);
    minTimer = setTimeout(() => { state.min = Number($('min').value); go(); }, 300);
  });
  $('sort').addEventListener('change', () => { state.sort = $('sort').value; go(); });
  for (const [id, view, q] of [['view-photos', 'photos', ''], ['view-unlabeled', 'photos', '-has:labels'], ['view-failed', 'failed', ''], ['view-duplicates', 'duplicates', ''], ['home', 'photos', '']]) {
    $(id).addEventListener('click', (event) => {
      event.preventDefault();
      state.view = view;
      state.q = q;
      state.labels = [];
      state.bucket = '';
      state.prefix = '';
      state.model = '';
      go();
    });
  }
  addEventListener('popstate', () => {
    const before = searchKey();
    readUrl();
    syncControls();
    if (searchKey() !== before) search();
    if (state.photo) openPhoto(state.photo);
    else if ($('detail').open) $('detail').close();
  });
  $('prev').addEventListener('click', () => step(-1));
  $('next').addEventListener('click', () => step(1));
  $('close').addEventListener('click', () => $('detail').close());
  $('show-boxes').addEventListener('change', () => { $('boxes').hidden = !$('show-boxes').checked; });
  $('detail').addEventListener('close', closedPhoto);
  $('copy-link').addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(location.href); $('copy-link').textContent = 'Link copied'; }
    catch { prompt('Copy this link', location.href); }
    setTimeout(() => { $('copy-link').textContent = 'Copy link'; }, 2000);
  });
  const filters = (open) => {
    document.body.classList.toggle('filters-open', open);
    $('filters-toggle').setAttribute('aria-expanded', String(open));
  };
  $('filters-toggle').addEventListener('click', () => filters(!document.body.classList.contains('filters-open')));
  $('filters-done').addEventListener('click', () => filters(false));
  $('all-labels').addEventListener('click', () => { state.allLabels = true; search({ keep: true }); });
  $('detail').addEventListener('keydown', (event) => {
    if (event.key === 'ArrowLeft') { event.preventDefault(); step(-1); }
    if (event.key === 'ArrowRight') { event.preventDefault(); step(1); }
  });
  $('detail').addEventListener('click', (event) => { if (event.target === $('detail')) $('detail').close(); });
  new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) more(); }, { rootMargin: '400px' }).observe($('more'));
  if (relay) relay.onmessage = (event) => onLive(event.data);
  addEventListener('keydown', keyboard);
  $('help-close').addEventListener('click', () => $('help').close());
  addEventListener('pagehide', closeStream);
  addEventListener('pageshow', (event) => { if (event.persisted) { live(); search({ keep: true }); } });
  api('/api/session').then((session) => { $('signout').hidden = !session.token_required; }).catch(() => {});
  search().then(() => { if (state.photo) openPhoto(state.photo); });
  pollStatus();
  live();
}

start();
