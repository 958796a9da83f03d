// Signet web console: a thin client of the REST API (/api/v1) with the operator's own Bearer
// token. No framework and no build step: the page is served as written. Everything from the
// server is put into the page with textContent, never as HTML (audit details carry what
// clients sent), and the page's CSP allows scripts and requests to this origin only.
const TOKEN_KEY = 'signet.token';
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
  return node;
}

/** A refused call: the server's problem document (RFC 9457), kept whole. */
class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  const text = await res.text();
  let json = {};
  try { json = text ? JSON.parse(text) : {}; } catch { json = { detail: text.slice(0, 200) }; }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

function say(text, kind = 'error') {
  const m = $('message');
  m.textContent = text;
  m.className = kind;
  m.hidden = !text;
}

/** Runs an action, showing a refusal's detail instead of failing silently; a 401 ends the session. */
async function guarded(fn) {
  try {
    say('');
    await fn();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && sessionStorage.getItem(TOKEN_KEY)) {
      signOut(`Signed out: ${e.message}`);
      return;
    }
    say(e instanceof ApiError ? `${e.problem.title ?? 'Refused'} (${e.status}): ${e.message}` : `Could not reach Signet: ${e.message}`);
  }
}

const VIEWS = ['sign-in', 'certificates', 'certificate', 'issue', 'cas', 'enrollment', 'groups', 'group', 'tokens', 'webhooks', 'audit'];
function show(view) {
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  for (const b of document.querySelectorAll('nav button[data-view]')) {
    const parent = { certificate: 'certificates', group: 'groups' }[view];
    if (b.dataset.view === view || b.dataset.view === parent) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
}

const date = (iso) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');
const names = (c) => c.sans.map((s) => s.value).join(', ') || c.commonName || c.subject;
const statusCell = (status) => el('td', { class: `status-${status}` }, status);

// --- certificates ------------------------------------------------------------------------

let certQuery = '';
let certCursor = null;

function certFilters() {
  const q = new URLSearchParams({ limit: '50' });
  const put = (k, v) => { if (v) q.set(k, v); };
  put('san', $('f-san').value.trim());
  put('subject', $('f-subject').value.trim());
  put('status', $('f-status').value);
  put('profile', $('f-profile').value);
  const days = Number($('f-days').value);
  if (days > 0) q.set('expiresBefore', new Date(Date.now() + days * 86_400_000).toISOString());
  return q;
}

/**
 * One "page" of the list. The server examines a bounded number of certificates per request, so
 * a filtered page can come back short, even empty, with a cursor: keep asking (up to five
 * requests) until 50 rows are shown or the inventory ends; "Load more" searches further.
 */
async function loadCertificates(more = false) {
  const q = more ? new URLSearchParams(certQuery) : certFilters();
  if (!more) certQuery = q.toString();
  const body = $('cert-table').tBodies[0];
  if (!more) body.replaceChildren();
  let cursor = more ? certCursor : null;
  let shown = 0;
  for (let request = 0; request < 5; request++) {
    if (cursor) q.set('cursor', cursor);
    q.set('limit', String(50 - shown));
    const page = await api('GET', `/certificates?${q}`);
    for (const c of page.items) {
      body.append(el('tr', { 'data-serial': c.serial },
        el('td', { class: 'mono' }, c.serial), el('td', {}, names(c)), el('td', {}, c.profile), el('td', {}, date(c.notAfter)), statusCell(c.status)));
    }
    shown += page.items.length;
    cursor = page.nextCursor;
    if (!cursor || shown >= 50) break;
  }
  certCursor = cursor;
  $('cert-more').hidden = !certCursor;
  $('cert-empty').textContent = certCursor ? 'No match among the certificates searched so far.' : 'No certificates match.';
  $('cert-empty').hidden = body.rows.length > 0;
}

/** What is at risk of expiring with no successor, soonest first (the server's expiry alerts). */
async function loadAtRisk() {
  const page = await api('GET', '/certificates?atRisk=true&limit=20');
  $('risk-table').tBodies[0].replaceChildren(...page.items.map((a) => {
    const left = expiresIn(a.notAfter);
    const what = a.kind === 'ca'
      ? el('td', {}, 'CA ', caLink(a.caId))
      : el('td', { class: 'mono' }, el('a', { href: `#/certificates/${encodeURIComponent(a.serial)}` }, a.serial));
    return el('tr', { 'data-risk': a.id, class: `risk-${a.kind}` }, what, el('td', {}, a.kind === 'ca' ? a.subject : names(a)),
      el('td', {}, a.profile ?? ''), el('td', { class: 'mono' }, a.kind === 'ca' ? '' : a.caId), el('td', {}, date(a.notAfter)), el('td', { class: left.cls }, left.text));
  }));
  $('risk-empty').hidden = page.items.length > 0;
  $('risk-more').hidden = !page.nextCursor;
}

/** Fills both profile selects once per page (a failed load is retried on the next view). */
let profilesLoaded = null;
function loadProfiles() {
  profilesLoaded ??= fillProfiles().catch((e) => { profilesLoaded = null; throw e; });
  return profilesLoaded;
}

async function fillProfiles() {
  const { items } = await api('GET', '/profiles');
  for (const select of [$('f-profile'), $('i-profile'), $('e-profile'), $('g-profile')]) {
    const keep = select.id === 'f-profile' || select.id === 'g-profile' ? [select.options[0]] : [];
    select.replaceChildren(...keep, ...items.map((p) => el('option', { value: p.name }, p.name)));
  }
}

async function showCertificate(serial) {
  const c = await api('GET', `/certificates/${encodeURIComponent(serial)}`);
  $('d-serial').textContent = c.serial;
  const rows = [
    ['Status', c.status + (c.revokedAt ? ` since ${date(c.revokedAt)} (${c.revocationReason})` : '')],
    ['Subject', c.subject], ['Names', c.sans.map((s) => `${s.type}:${s.value}`).join(', ')],
    ['Profile', c.profile], ['Issuer', c.caId], ['Key', c.keyAlgorithm],
    ['Not before', date(c.notBefore)], ['Not after', date(c.notAfter)],
    ['SHA-256', c.fingerprintSha256], ['Issued', `${date(c.createdAt)}${c.tokenId ? ` by ${c.tokenId}` : ''}`],
  ];
  if (c.predecessorSerial) rows.push(['Renews', c.predecessorSerial]);
  $('d-fields').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { class: k === 'Status' ? `status-${c.status}` : '' }, v)]));
  $('d-pem').value = c.certificate;
  $('revoke-form').hidden = c.status !== 'good';
  $('revoke-confirm').hidden = true;
  $('unhold').hidden = c.status !== 'hold';
  show('certificate');
}

// --- audit -------------------------------------------------------------------------------

let auditQuery = '';
let auditCursor = null;

async function loadAudit(more = false) {
  const q = more ? new URLSearchParams(auditQuery) : new URLSearchParams({ limit: '100', order: 'desc' });
  if (more) q.set('cursor', auditCursor);
  else {
    if ($('a-action').value.trim()) q.set('action', $('a-action').value.trim());
    if ($('a-target').value.trim()) q.set('target', $('a-target').value.trim());
    auditQuery = q.toString();
  }
  const page = await api('GET', `/audit?${q}`);
  const body = $('audit-table').tBodies[0];
  if (!more) body.replaceChildren();
  for (const e of page.items) {
    body.append(el('tr', {}, el('td', {}, e.seq), el('td', {}, date(e.time)), el('td', {}, e.actor), el('td', {}, e.action),
      el('td', { class: 'mono' }, e.target ?? ''), el('td', {}, e.outcome), el('td', { class: 'mono' }, e.details ? JSON.stringify(e.details) : '')));
  }
  auditCursor = page.nextCursor;
  $('audit-more').hidden = !auditCursor;
}

// --- enrollment credentials ------------------------------------------------------------

async function loadEnrollment() {
  const { items } = await api('GET', '/enrollment-credentials');
  $('enroll-table').tBodies[0].replaceChildren(...items.map((c) => {
    const revoke = el('td');
    if (c.status === 'active') revoke.append(el('button', { type: 'button', class: 'danger', 'data-revoke': c.id }, 'Revoke'));
    return el('tr', { 'data-id': c.id },
      el('td', { class: 'mono' }, c.id), el('td', {}, c.protocol.toUpperCase()), el('td', {}, c.profile),
      el('td', {}, c.nameSuffixes ? c.nameSuffixes.join(', ') : 'any the profile allows'), el('td', {}, `${c.usesSpent} of ${c.usesAllowed}`),
      statusCell(c.status), el('td', {}, c.expiresAt ? date(c.expiresAt) : 'never'), el('td', {}, date(c.lastUsedAt)), el('td', {}, c.createdBy), revoke);
  }));
  $('enroll-empty').hidden = items.length > 0;
}

function forgetSecret() {
  $('enroll-made-secret').value = '';
  $('enroll-made-userpass').textContent = '';
  $('enroll-made').hidden = true;
}

// --- certificate authorities -------------------------------------------------------------

const DAY_MS = 86_400_000;
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Whole days from now to `iso`, in words (the text says it; the colour only repeats it). */
function expiresIn(iso) {
  const days = Math.floor((Date.parse(iso) - Date.now()) / DAY_MS);
  if (days < 0) return { text: `expired ${plural(-days, 'day')} ago`, cls: 'expiry-past' };
  if (days === 0) return { text: 'less than a day', cls: 'expiry-soon' };
  return { text: plural(days, 'day'), cls: days <= 30 ? 'expiry-soon' : '' };
}

const caLink = (id, rel) => el('a', { href: `#/cas/${encodeURIComponent(id)}`, ...(rel ? { rel } : {}) }, id);
const line = (...parts) => el('span', { class: 'line' }, ...parts);

/** The status in words, with when a retiring CA stopped issuing, its overlap, or its revocation. */
function caStatus(ca) {
  const td = el('td', {}, el('span', { class: `status status-${ca.status}` }, ca.status));
  if (ca.retiringSince) {
    td.append(line(`${ca.status === 'retiring' ? 'since' : 'retiring since'} ${date(ca.retiringSince)}`));
    td.append(line(ca.overlapEndsAt ? `overlap ends ${date(ca.overlapEndsAt)}` : "overlap: the last third of each certificate's life"));
  }
  if (ca.revokedAt) td.append(line(`since ${date(ca.revokedAt)}${ca.revocationReason ? ` (${ca.revocationReason})` : ''}`));
  return td;
}

/** Lineages of two or more CAs, each oldest → newest, following predecessorId/successorId. */
function lineages(items) {
  const byId = new Map(items.map((ca) => [ca.id, ca]));
  const chains = [];
  for (const ca of items) {
    if (!ca.successorId || (ca.predecessorId && byId.has(ca.predecessorId))) continue;
    const chain = [ca];
    const seen = new Set([ca.id]);
    for (let next = byId.get(ca.successorId); next && !seen.has(next.id); next = byId.get(next.successorId)) {
      chain.push(next);
      seen.add(next.id);
    }
    chains.push(chain);
  }
  return chains;
}

/** Each CA's cross- and superseded certificates; a CA reports those for its key and those it signed: each kept once. */
async function caCertificates(items) {
  const details = await Promise.all(items.map((ca) => api('GET', `/cas/${encodeURIComponent(ca.id)}`)));
  const byId = new Map();
  for (const d of details) for (const x of d.caCertificates ?? []) byId.set(x.id, x);
  const order = new Map(items.map((ca, i) => [ca.id, i]));
  return [...byId.values()].sort((a, b) => (order.get(a.caId) ?? 0) - (order.get(b.caId) ?? 0) || a.kind.localeCompare(b.kind) || a.notBefore.localeCompare(b.notBefore));
}

let casLoad = 0;

/** The Authorities view; `focusId` (from #/cas/<id>) is the CA to bring into view. */
async function loadCas(focusId) {
  const mine = ++casLoad;
  const { items } = await api('GET', '/cas');
  const extra = await caCertificates(items);
  if (mine !== casLoad) return; // a later navigation is drawing the view
  $('ca-table').tBodies[0].replaceChildren(
    ...items.map((ca) => {
      const exp = expiresIn(ca.notAfter);
      const succession = el('td', { class: 'succession' });
      if (ca.predecessorId) succession.append(line('replaces ', caLink(ca.predecessorId, 'prev')));
      if (ca.successorId) succession.append(line('replaced by ', caLink(ca.successorId, 'next')));
      for (const x of extra.filter((c) => c.kind === 'cross' && c.caId === ca.id)) succession.append(line('cross-certified by ', caLink(x.issuerId)));
      for (const x of extra.filter((c) => c.kind === 'cross' && c.issuerId === ca.id && c.caId !== ca.id)) succession.append(line('cross-certified ', caLink(x.caId)));
      return el('tr', { 'data-ca': ca.id, class: `ca-${ca.status}`, tabIndex: -1 },
        el('td', { class: 'mono' }, ca.id), el('td', {}, ca.subject), el('td', {}, ca.keyAlgorithm), el('td', {}, date(ca.notAfter)),
        el('td', { class: exp.cls }, exp.text), caStatus(ca), succession, el('td', { class: 'mono' }, ca.fingerprint));
    }),
  );
  const chains = lineages(items);
  $('ca-lineages').replaceChildren(...chains.map((chain) => el('li', {}, `${chain.at(-1).subject}: `,
    ...chain.flatMap((ca, i) => [...(i ? [' → '] : []), caLink(ca.id), ` (${ca.status})`]))));
  $('ca-lineages-part').hidden = chains.length === 0;
  $('ca-certs').tBodies[0].replaceChildren(...extra.map((x) => {
    const status = x.status === 'good' && Date.parse(x.notAfter) < Date.now() ? 'expired' : x.status;
    return el('tr', { 'data-id': x.id },
      el('td', { class: 'mono' }, caLink(x.caId)), el('td', {}, x.kind), el('td', { class: 'mono' }, caLink(x.issuerId)),
      el('td', { class: 'mono' }, x.serial), el('td', {}, date(x.notBefore)), el('td', {}, date(x.notAfter)), statusCell(status),
      el('td', {}, el('a', { href: x.url, download: `${x.id}.crt`, type: 'application/pkix-cert' }, `${x.id}.crt`)));
  }));
  $('ca-certs-empty').hidden = extra.length > 0;
  const parent = $('c-parent');
  const chosen = parent.value;
  parent.replaceChildren(...items.filter((ca) => ca.status === 'active').map((ca) => el('option', { value: ca.id }, `${ca.subject} (${ca.id})`)));
  if (chosen) parent.value = chosen;
  const row = focusId && document.querySelector(`#ca-table tr[data-ca="${CSS.escape(focusId)}"]`);
  if (row) {
    row.setAttribute('aria-current', 'true');
    row.focus();
    row.scrollIntoView({ block: 'center' });
  }
}

// --- key groups --------------------------------------------------------------------------

async function loadGroups() {
  const { items } = await api('GET', '/groups');
  $('group-table').tBodies[0].replaceChildren(...items.map((g) => el('tr', { 'data-group': g.id },
    el('td', {}, el('a', { href: `#/groups/${encodeURIComponent(g.id)}` }, g.name)), el('td', { class: 'mono' }, g.id), el('td', {}, g.profile),
    el('td', {}, g.members), el('td', {}, g.epoch), el('td', {}, `${date(g.createdAt)} by ${g.createdBy}`))));
  $('group-empty').hidden = items.length > 0;
}

async function showGroup(id) {
  const g = await api('GET', `/groups/${encodeURIComponent(id)}`);
  $('gd-name').textContent = g.name;
  $('gd-name').dataset.id = g.id;
  const rows = [['Id', g.id], ['Member profile', g.profile], ['Members', g.members], ['Epoch', g.epoch], ['Tree height', g.treeHeight], ['Created', `${date(g.createdAt)} by ${g.createdBy}`]];
  $('gd-fields').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  $('member-table').tBodies[0].replaceChildren(...g.memberList.map((m) => el('tr', { 'data-serial': m.serial },
    el('td', { class: 'mono' }, el('a', { href: `#/certificates/${encodeURIComponent(m.serial)}` }, m.serial)), el('td', {}, m.leaf), el('td', {}, m.joinedEpoch),
    el('td', {}, date(m.joinedAt)), el('td', {}, el('button', { type: 'button', class: 'danger', 'data-remove': m.serial }, 'Remove')))));
  $('member-empty').hidden = g.memberList.length > 0;
  $('member-more').hidden = g.memberList.length >= g.members;
  show('group');
}

// --- API tokens ----------------------------------------------------------------------------

const list = (v) => v.split(',').map((s) => s.trim()).filter(Boolean);

async function loadTokens() {
  const { items } = await api('GET', '/tokens');
  const now = Date.now();
  $('token-table').tBodies[0].replaceChildren(...items.map((t) => {
    const status = t.revokedAt ? 'revoked' : t.expiresAt && Date.parse(t.expiresAt) <= now ? 'expired' : 'active';
    const limits = [
      t.profiles && `profiles ${t.profiles.join(', ')}`,
      t.nameSuffixes && `names under ${t.nameSuffixes.join(', ')}`,
      t.groups && `groups ${t.groups.join(', ')}`,
    ].filter(Boolean).join('; ');
    const revoke = el('td');
    if (status === 'active') revoke.append(el('button', { type: 'button', class: 'danger', 'data-revoke': t.id }, 'Revoke'));
    return el('tr', { 'data-id': t.id }, el('td', { class: 'mono' }, t.id), el('td', {}, t.name), el('td', {}, t.scopes.join(', ')), el('td', {}, limits || 'none'),
      statusCell(status), el('td', {}, t.expiresAt ? date(t.expiresAt) : 'never'), el('td', {}, date(t.lastUsedAt)), el('td', {}, date(t.createdAt)), revoke);
  }));
}

function forgetToken() {
  $('token-made-secret').value = '';
  $('token-made').hidden = true;
}

// --- webhooks ------------------------------------------------------------------------------

async function loadWebhooks(deadOf) {
  const { items } = await api('GET', '/webhooks');
  $('webhook-table').tBodies[0].replaceChildren(...items.map((w) => el('tr', { 'data-id': w.id },
    el('td', { class: 'mono' }, w.id), el('td', { class: 'mono' }, w.url), el('td', {}, w.events.join(', ')),
    el('td', {}, w.attempts ? `${plural(w.attempts, 'attempt')}: ${w.lastError ?? ''}` : 'no'),
    el('td', {}, w.deadLetters ? el('button', { type: 'button', 'data-dead': w.id }, String(w.deadLetters)) : '0'),
    el('td', {}, `${date(w.createdAt)} by ${w.createdBy}`),
    el('td', {}, el('button', { type: 'button', class: 'danger', 'data-remove': w.id }, 'Remove')))));
  $('webhook-empty').hidden = items.length > 0;
  if (deadOf && items.some((w) => w.id === deadOf)) await showDeadLetters(deadOf);
  else $('dead-part').hidden = true;
}

async function showDeadLetters(id) {
  const w = await api('GET', `/webhooks/${encodeURIComponent(id)}`);
  $('dead-of').textContent = w.id;
  $('dead-table').tBodies[0].replaceChildren(...w.deadLetterList.map((d) => el('tr', { 'data-delivery': d.id },
    el('td', { class: 'mono' }, d.id), el('td', {}, d.type), el('td', {}, d.attempts), el('td', {}, d.lastError ?? ''), el('td', {}, date(d.updatedAt)),
    el('td', {}, el('button', { type: 'button', 'data-retry': d.id }, 'Send again')))));
  $('dead-part').hidden = false;
}

function forgetWebhookSecret() {
  $('webhook-made-secret').value = '';
  $('webhook-made').hidden = true;
}

// --- navigation --------------------------------------------------------------------------

async function route() {
  if (!sessionStorage.getItem(TOKEN_KEY)) { $('nav').hidden = true; show('sign-in'); return; }
  $('nav').hidden = false;
  const [, view, arg] = location.hash.split('/');
  await guarded(async () => {
    if (view === 'certificates' && arg) await showCertificate(decodeURIComponent(arg));
    else if (view === 'issue') { show('issue'); await loadProfiles(); }
    else if (view === 'cas') { show('cas'); await loadCas(arg && decodeURIComponent(arg)); }
    else if (view === 'enrollment') { show('enrollment'); await loadProfiles(); await loadEnrollment(); }
    else if (view === 'groups' && arg) await showGroup(decodeURIComponent(arg));
    else if (view === 'groups') { show('groups'); await loadProfiles(); await loadGroups(); }
    else if (view === 'tokens') { show('tokens'); await loadTokens(); }
    else if (view === 'webhooks') { show('webhooks'); await loadWebhooks(); }
    else if (view === 'audit') { show('audit'); await loadAudit(); }
    else {
      show('certificates');
      await loadProfiles();
      await Promise.all([loadAtRisk(), loadCertificates()]);
    }
  });
}

function go(hash) {
  if (location.hash === hash) route(); else location.hash = hash;
}

function signOut(why = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  forgetSecret();
  forgetToken();
  forgetWebhookSecret();
  $('nav').hidden = true;
  show('sign-in');
  say(why, why ? 'error' : 'info');
  history.replaceState(null, '', location.pathname);
}

$('sign-in-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = $('token').value.trim();
  $('token').value = '';
  sessionStorage.setItem(TOKEN_KEY, token);
  guarded(async () => {
    try { await api('GET', '/cas'); } catch (e) { sessionStorage.removeItem(TOKEN_KEY); throw e; }
    go('#/certificates');
  });
});
$('sign-out').addEventListener('click', () => signOut());
for (const b of document.querySelectorAll('nav button[data-view]')) b.addEventListener('click', () => go(`#/${b.dataset.view}`));

$('search-form').addEventListener('submit', (ev) => { ev.preventDefault(); guarded(() => loadCertificates()); });
$('expiring-soon').addEventListener('click', () => { $('f-days').value = '30'; $('f-status').value = 'good'; guarded(() => loadCertificates()); });
$('cert-more').addEventListener('click', () => guarded(() => loadCertificates(true)));
$('cert-table').addEventListener('click', (ev) => {
  const row = ev.target.closest('tr[data-serial]');
  if (row) go(`#/certificates/${row.dataset.serial}`);
});
$('back').addEventListener('click', () => go('#/certificates'));

$('revoke-form').addEventListener('submit', (ev) => { ev.preventDefault(); $('revoke-confirm').hidden = false; });
$('revoke-no').addEventListener('click', () => { $('revoke-confirm').hidden = true; });
$('revoke-yes').addEventListener('click', () => guarded(async () => {
  const serial = $('d-serial').textContent;
  await api('POST', `/certificates/${serial}/revoke`, { reason: $('r-reason').value });
  await showCertificate(serial);
  say(`Revoked ${serial}; OCSP and the next CRL report it.`, 'info');
}));
$('unhold').addEventListener('click', () => guarded(async () => {
  const serial = $('d-serial').textContent;
  await api('POST', `/certificates/${serial}/unhold`);
  await showCertificate(serial);
  say(`Hold on ${serial} released.`, 'info');
}));

$('issue-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guarded(async () => {
    const body = { csr: $('i-csr').value.trim(), profile: $('i-profile').value };
    const days = Number($('i-days').value);
    if (days > 0) body.validityDays = days;
    const c = await api('POST', '/certificates', body);
    $('issued-link').textContent = c.serial;
    $('issued-link').href = `#/certificates/${c.serial}`;
    $('issued-until').textContent = date(c.notAfter);
    $('issued-pem').value = `${c.certificate.trim()}\n${c.chain.trim()}\n`;
    $('issued').hidden = false;
    say(`Issued ${c.serial}.`, 'info');
  });
});
$('enroll-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guarded(async () => {
    forgetSecret();
    const body = { profile: $('e-profile').value, protocol: $('e-protocol').value, uses: Number($('e-uses').value) };
    const suffixes = $('e-names').value.split(',').map((s) => s.trim()).filter(Boolean);
    if (suffixes.length) body.nameSuffixes = suffixes;
    const days = Number($('e-days').value);
    if (days > 0) body.expiresAt = new Date(Date.now() + days * 86_400_000).toISOString();
    const made = await api('POST', '/enrollment-credentials', body);
    $('enroll-made-id').textContent = made.id;
    $('enroll-made-secret').value = made.secret;
    $('enroll-made-userpass-line').hidden = made.credential.protocol !== 'est';
    $('enroll-made-userpass').textContent = made.credential.protocol === 'est' ? `--userpass ${made.id}:${made.secret}` : '';
    $('enroll-made').hidden = false;
    await loadEnrollment();
  });
});
$('enroll-made-done').addEventListener('click', forgetSecret);
$('enroll-table').addEventListener('click', (ev) => {
  const id = ev.target.closest('button[data-revoke]')?.dataset.revoke;
  if (!id) return;
  guarded(async () => {
    await api('POST', `/enrollment-credentials/${encodeURIComponent(id)}/revoke`, {});
    await loadEnrollment();
    say(`Revoked ${id}; it no longer enrolls anything.`, 'info');
  });
});
$('ca-create-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guarded(async () => {
    const made = await api('POST', '/cas', {
      parentId: $('c-parent').value, subject: $('c-subject').value.trim(), keyAlgorithm: $('c-key').value,
      validityDays: Number($('c-days').value), pathLen: Number($('c-pathlen').value),
    });
    $('c-subject').value = '';
    await loadCas(made.id);
    say(`Created intermediate ${made.id} (${made.subject}); it issues once a profile or request names it.`, 'info');
  });
});
$('group-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guarded(async () => {
    const body = { name: $('g-name').value.trim() };
    if ($('g-profile').value) body.profile = $('g-profile').value;
    const g = await api('POST', '/groups', body);
    $('g-name').value = '';
    await loadGroups();
    say(`Created key group ${g.name} (${g.id}).`, 'info');
  });
});
$('member-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guarded(async () => {
    const id = $('gd-name').dataset.id;
    const serial = $('m-serial').value.trim();
    const r = await api('POST', `/groups/${encodeURIComponent(id)}/members`, { serial });
    $('m-serial').value = '';
    await showGroup(id);
    say(`Added ${serial}; the group is at epoch ${r.epoch ?? ''}.`, 'info');
  });
});
$('member-table').addEventListener('click', (ev) => {
  const serial = ev.target.closest('button[data-remove]')?.dataset.remove;
  if (!serial) return;
  guarded(async () => {
    const id = $('gd-name').dataset.id;
    await api('DELETE', `/groups/${encodeURIComponent(id)}/members/${encodeURIComponent(serial)}`);
    await showGroup(id);
    say(`Removed ${serial}; the keys on its path were replaced.`, 'info');
  });
});
$('group-back').addEventListener('click', () => go('#/groups'));
$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guarded(async () => {
    forgetToken();
    const body = { name: $('t-name').value.trim(), scopes: [...document.querySelectorAll('#t-scopes input:checked')].map((c) => c.value) };
    for (const [key, id] of [['profiles', 't-profiles'], ['nameSuffixes', 't-names'], ['groups', 't-groups']]) {
      const v = list($(id).value);
      if (v.length) body[key] = v;
    }
    const days = Number($('t-days').value);
    if (days > 0) body.expiresAt = new Date(Date.now() + days * 86_400_000).toISOString();
    const made = await api('POST', '/tokens', body);
    $('token-made-id').textContent = made.id;
    $('token-made-secret').value = made.token;
    $('token-made').hidden = false;
    $('token-form').reset();
    await loadTokens();
  });
});
$('token-made-done').addEventListener('click', forgetToken);
$('webhook-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guarded(async () => {
    forgetWebhookSecret();
    const body = { url: $('w-url').value.trim(), events: [...document.querySelectorAll('#w-events input:checked')].map((c) => c.value) };
    const made = await api('POST', '/webhooks', body);
    $('webhook-made-id').textContent = made.id;
    $('webhook-made-secret').value = made.secret;
    $('webhook-made').hidden = false;
    $('webhook-form').reset();
    await loadWebhooks();
  });
});
$('webhook-made-done').addEventListener('click', forgetWebhookSecret);
$('webhook-table').addEventListener('click', (ev) => {
  const remove = ev.target.closest('button[data-remove]')?.dataset.remove;
  const dead = ev.target.closest('button[data-dead]')?.dataset.dead;
  if (remove) guarded(async () => {
    await api('DELETE', `/webhooks/${encodeURIComponent(remove)}`);
    await loadWebhooks();
    say(`Removed ${remove}; it receives nothing more.`, 'info');
  });
  else if (dead) guarded(() => showDeadLetters(dead));
});
$('dead-table').addEventListener('click', (ev) => {
  const delivery = ev.target.closest('button[data-retry]')?.dataset.retry;
  if (!delivery) return;
  guarded(async () => {
    const id = $('dead-of').textContent;
    await api('POST', `/webhooks/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(delivery)}/retry`, {});
    await loadWebhooks(id);
    say(`Sending ${delivery} again.`, 'info');
  });
});
$('token-table').addEventListener('click', (ev) => {
  const id = ev.target.closest('button[data-revoke]')?.dataset.revoke;
  if (!id) return;
  guarded(async () => {
    await api('DELETE', `/tokens/${encodeURIComponent(id)}`);
    await loadTokens();
    say(`Revoked ${id}; it is refused from now on.`, 'info');
  });
});
$('audit-form').addEventListener('submit', (ev) => { ev.preventDefault(); guarded(() => loadAudit()); });
$('audit-more').addEventListener('click', () => guarded(() => loadAudit(true)));

window.addEventListener('hashchange', route);
route();
