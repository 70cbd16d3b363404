// Builds page: recent pipelines of every project with their stages and jobs, a job log that
// follows a running job by byte offset, retry / cancel / play with confirmation, stuck jobs with
// what to do about them, and the runners with their profiles. Data from api/v1/builds; text from
// i18n.js (builds-i18n.js); API data only ever goes into the page as text.
import { t, getLang } from './i18n.js';
import './builds-i18n.js';
import { TraceParser, visible as visibleText } from './tracefmt.js';

// Helpers from app.js, handed over by initBuilds (app.js owns the API client and DOM helpers).
let api, h, fill, toast;

export function initBuilds(helpers) {
  ({ api, h, fill, toast } = helpers);
}

const PIPELINE_POLL = 3000;
const TRACE_POLL = 1000;

const bs = {
  page: null,          // the last GET builds answer
  error: null,
  filter: 'all',
  open: null,          // pipeline id whose jobs are shown
  job: null,           // { project, id, name } whose log is shown
  follow: true,
  wrap: false,
  times: false,        // show the runner's time of each line (logs of runner 18.7 and later)
  offset: 0,
  trace: null,         // the log viewer's state
  timer: null,
  traceTimer: null,
  busy: false,
};

const onPage = () => !!document.getElementById('builds-page');

// ---------------------------------------------------------------------------------------------
// Formatting

function dur(seconds) {
  if (seconds === null || seconds === undefined) return '';
  const s = Math.max(0, Math.round(seconds));
  const hh = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (hh > 0) return `${hh}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
  return `${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
}

function ago(iso) {
  if (!iso) return '';
  const s = Math.max(0, Math.floor((Date.now() - new Date(iso).getTime()) / 1000));
  let d;
  if (s < 60) d = t('dur.s', { s });
  else if (s < 3600) d = t('dur.m', { m: Math.floor(s / 60) });
  else if (s < 86400) d = t('dur.hm', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  else d = t('dur.dh', { d: Math.floor(s / 86400), h: Math.floor((s % 86400) / 3600) });
  return t('builds.ago', { d });
}

function absTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return isNaN(d) ? '' : d.toLocaleString(getLang(), { hour12: false });
}

function fmtSize(n) {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1024 / 1024).toFixed(1) + ' MiB';
}

const STATUS_GLYPH = {
  success: '✓', failed: '✕', running: '●', pending: '◷', created: '○', canceled: '⊘', canceling: '⊘',
  skipped: '»', manual: '▶', scheduled: '◷', preparing: '◷', waiting_for_resource: '◷',
};

// status is a GitLab-coloured status badge; stuck pending jobs get their own look.
function status(st, opts) {
  const o = opts || {};
  const key = o.stuck ? 'stuck' : st;
  const label = o.allowed && st === 'failed' ? t('ci.allowedToFail') : t('ci.' + key, null, st);
  return h('span', { class: 'ci-status s-' + key + (o.small ? ' small' : ''), 'data-status': st, title: label, role: 'img', 'aria-label': label },
    h('span', { class: 'glyph', 'aria-hidden': 'true', text: o.stuck ? '!' : (STATUS_GLYPH[st] || '•') }),
    o.small ? null : h('span', { class: 'label', text: label }));
}

function active(st) {
  return !['success', 'failed', 'canceled', 'skipped', 'manual'].includes(st);
}

// ---------------------------------------------------------------------------------------------
// Page

export function renderBuilds() {
  const view = document.getElementById('view');
  clearTimeout(bs.timer);
  const filter = h('select', { id: 'builds-filter', onchange: (e) => { bs.filter = e.target.value; renderList(); } },
    ['all', 'active', 'failed'].map((f) => h('option', { value: f, selected: f === bs.filter }, t('builds.filter.' + f))));
  fill(view, h('div', { id: 'builds-page', class: 'builds' },
    h('div', { class: 'page-head' },
      h('h2', { class: 'page-title', text: t('builds.title') }),
      h('div', { class: 'builds-tools' },
        h('span', { class: 'muted small', id: 'builds-updated' }),
        h('label', { class: 'small' }, t('builds.filter') + ' ', filter))),
    h('p', { class: 'muted', text: t('builds.intro') }),
    h('div', { class: 'builds-grid' },
      h('div', { class: 'builds-main' },
        h('section', { class: 'card pipelines-card', id: 'pipelines' }, h('p', { class: 'muted', text: t('loading') })),
        h('section', { class: 'card job-log', id: 'job-log', hidden: true })),
      h('aside', { class: 'card runner-panel', id: 'runner-panel' }, h('h3', { text: t('builds.runners.title') })))));
  renderList();
  renderRunnersPanel();
  if (bs.job) { renderLogShell(); pollTrace(); }
  poll();
}

async function poll() {
  clearTimeout(bs.timer);
  if (!onPage()) return;
  try {
    bs.page = await api('GET', 'builds?limit=25');
    bs.error = null;
  } catch (e) {
    bs.error = e;
  }
  if (!onPage()) return;
  renderList();
  renderRunnersPanel();
  bs.timer = setTimeout(poll, document.hidden ? PIPELINE_POLL * 3 : PIPELINE_POLL);
}

function visible(p) {
  if (bs.filter === 'active') return active(p.status);
  if (bs.filter === 'failed') return p.status === 'failed';
  return true;
}

function renderList() {
  const box = document.getElementById('pipelines');
  if (!box) return;
  const upd = document.getElementById('builds-updated');
  if (bs.error) {
    fill(box, h('p', { class: 'error-text', id: 'builds-error', text: t('builds.unavailable', { message: bs.error.message }) }));
    return;
  }
  if (!bs.page) return;
  if (upd) upd.textContent = t('builds.updated', { time: new Date(bs.page.observed_at).toLocaleTimeString(getLang(), { hour12: false }) });
  const list = bs.page.pipelines.filter(visible);
  if (list.length === 0) {
    fill(box, h('p', { class: 'muted', id: 'builds-empty', text: bs.page.pipelines.length ? t('builds.noneFiltered') : t('builds.none') }));
    return;
  }
  const rows = [];
  for (const p of list) {
    const open = bs.open === p.id;
    rows.push(pipelineRow(p, open));
    if (open) rows.push(h('tr', { class: 'jobs-row' }, h('td', { colspan: 7 }, jobsTable(p))));
  }
  fill(box, h('table', { class: 'pipelines' },
    h('thead', {}, h('tr', {}, ['status', 'pipeline', 'commit', 'stages', 'user', 'duration', ''].map((k) => h('th', { text: k ? t('builds.col.' + k) : '' })))),
    h('tbody', {}, rows)));
}

function pipelineRow(p, open) {
  const toggle = () => { bs.open = open ? null : p.id; renderList(); };
  const duration = p.started_at ? dur(active(p.status) ? (Date.now() - new Date(p.started_at).getTime()) / 1000 : p.duration) : '';
  const anyStuck = p.stages.some((s) => s.jobs.some((j) => j.stuck));
  return h('tr', { class: 'pipeline' + (open ? ' open' : ''), 'data-pipeline': p.id, 'data-project': p.project_id },
    h('td', {}, status(p.status), anyStuck ? h('span', { class: 'stuck-flag', title: t('builds.stuck'), text: t('ci.stuck') }) : null),
    h('td', {},
      h('button', { class: 'link pipeline-toggle', 'aria-expanded': open ? 'true' : 'false', onclick: toggle }, h('span', { class: 'caret', text: open ? '▾' : '▸' }), '#' + p.id),
      h('div', { class: 'muted small mono', text: p.project })),
    h('td', { class: 'commit' },
      h('div', {}, h('span', { class: 'ref mono', text: p.ref }), ' ', h('span', { class: 'sha mono muted', text: (p.sha || '').slice(0, 8) })),
      h('div', { class: 'title', title: p.commit_title, text: p.commit_title || '' })),
    h('td', {}, miniGraph(p)),
    h('td', { class: 'small' }, h('div', { text: p.user_name || p.user || '' }), h('div', { class: 'muted', title: absTime(p.created_at), text: ago(p.created_at) })),
    h('td', { class: 'mono small', text: duration }),
    h('td', { class: 'row-actions' },
      ['failed', 'canceled'].includes(p.status) ? h('button', { class: 'small', 'data-action': 'retry-pipeline', onclick: () => pipelineAction(p, 'retry'), text: t('builds.action.retry') }) : null,
      active(p.status) ? h('button', { class: 'small danger', 'data-action': 'cancel-pipeline', onclick: () => pipelineAction(p, 'cancel'), text: t('builds.action.cancel') }) : null));
}

// miniGraph is one dot per stage, coloured by its status, like GitLab's pipeline list.
function miniGraph(p) {
  return h('div', { class: 'mini-graph' }, p.stages.flatMap((s, i) => [
    i > 0 ? h('span', { class: 'link-line', 'aria-hidden': 'true' }) : null,
    h('span', { class: 'stage-dot s-' + s.status, title: s.name + ': ' + t('ci.' + s.status, null, s.status) + ' — ' + s.jobs.map((j) => j.name).join(', '), 'data-stage': s.name },
      h('span', { class: 'glyph', 'aria-hidden': 'true', text: STATUS_GLYPH[s.status] || '•' }))]));
}

function jobsTable(p) {
  const rows = [];
  for (const s of p.stages) {
    for (const j of s.jobs) {
      j.project_id = j.project_id || p.project_id;
      rows.push(jobRow(j));
      if (j.stuck) rows.push(h('tr', { class: 'stuck-row' }, h('td', { colspan: 6 }, stuckHint(j))));
    }
  }
  return h('div', { class: 'jobs' },
    h('h4', { text: t('builds.jobs', { id: p.id }) }),
    h('table', { class: 'jobs-table' },
      h('thead', {}, h('tr', {}, ['status', 'job', 'stage', 'runner', 'duration', ''].map((k) => h('th', { text: k ? t('builds.col.' + k) : '' })))),
      h('tbody', {}, rows)));
}

function jobDuration(j) {
  if (j.started_at && active(j.status)) return dur((Date.now() - new Date(j.started_at).getTime()) / 1000);
  if (j.started_at) return dur(j.duration);
  if (j.status === 'pending' && j.created_at) return t('builds.queued', { d: dur((Date.now() - new Date(j.created_at).getTime()) / 1000) });
  return '';
}

function profileOf(runnerID) {
  const r = bs.page && bs.page.runners.find((x) => x.id === runnerID);
  return r && r.profile ? r.profile : '';
}

function jobRow(j) {
  const selected = bs.job && bs.job.id === j.id;
  const profile = profileOf(j.runner_id);
  return h('tr', { class: 'job' + (selected ? ' selected' : ''), 'data-job': j.id, 'data-name': j.name },
    h('td', {}, status(j.status, { stuck: !!j.stuck, allowed: j.allow_failure })),
    h('td', {},
      h('button', { class: 'link job-name', onclick: () => openLog(j), text: j.name }),
      j.tries > 1 ? h('span', { class: 'muted small tries', text: ' · ' + t('builds.tries', { n: j.tries }) }) : null,
      j.tags && j.tags.length ? h('div', {}, j.tags.map((tg) => h('span', { class: 'tag', text: tg }))) : null),
    h('td', { class: 'muted', text: j.stage }),
    h('td', { class: 'small' }, j.runner ? h('span', { title: j.runner, text: profile ? t('builds.runners.profile', { name: profile }) : j.runner }) : h('span', { class: 'muted', text: '–' })),
    h('td', { class: 'mono small', text: jobDuration(j) }),
    h('td', { class: 'row-actions' }, jobButtons(j)));
}

function jobButtons(j) {
  const b = (action, cls) => h('button', { class: 'small ' + (cls || ''), 'data-action': action, onclick: () => jobAction(j, action), text: t('builds.action.' + action) });
  return [
    h('button', { class: 'small', 'data-action': 'log', onclick: () => openLog(j), text: t('builds.action.log') }),
    j.status === 'manual' ? b('play', 'primary') : null,
    ['pending', 'running', 'created'].includes(j.status) ? b('cancel', 'danger') : null,
    ['success', 'failed', 'canceled'].includes(j.status) ? b('retry') : null,
  ];
}

function stuckHint(j) {
  const s = j.stuck;
  const key = 'builds.stuck.' + s.reason;
  const text = t(key, { tags: (s.tags || []).join(', '), runners: (s.offline || []).join(', ') }, s.hint || t('builds.stuck'));
  return h('div', { class: 'stuck-hint', role: 'note', 'data-reason': s.reason },
    h('span', { class: 'glyph', 'aria-hidden': 'true', text: '⚠' }), ' ', text, ' ',
    h('a', { href: '#runners', text: t('builds.stuck.action') + ' →' }));
}

async function jobAction(j, action) {
  if (!confirm(t('builds.confirm.' + action, { name: j.name }))) return;
  try {
    const r = await api('POST', `builds/projects/${j.project_id}/jobs/${j.id}/${action}`);
    toast(() => t('builds.done.' + action, { name: j.name, id: r.job.id }));
    if (action === 'retry' && bs.job && bs.job.id === j.id) {
      openLog({ ...j, id: r.job.id, status: r.job.status });
    } else if (bs.job && bs.job.id === j.id) {
      bs.follow = true;
      pollTrace();
    }
  } catch (e) {
    toast(e.message, 'error');
  }
  poll();
}

async function pipelineAction(p, action) {
  const key = action === 'retry' ? 'pipelineRetry' : 'pipelineCancel';
  if (!confirm(t('builds.confirm.' + key, { id: p.id }))) return;
  try {
    await api('POST', `builds/projects/${p.project_id}/pipelines/${p.id}/${action}`);
    toast(() => t('builds.done.' + key, { id: p.id }));
  } catch (e) {
    toast(e.message, 'error');
  }
  poll();
}

// ---------------------------------------------------------------------------------------------
// Runners

function renderRunnersPanel() {
  const box = document.getElementById('runner-panel');
  if (!box) return;
  const runners = bs.page ? bs.page.runners : [];
  const title = h('h3', { text: t('builds.runners.title') });
  if (!bs.page) { fill(box, title, bs.error ? null : h('p', { class: 'muted', text: t('loading') })); return; }
  if (runners.length === 0) { fill(box, title, h('p', { class: 'muted', text: t('builds.runners.none') })); return; }
  fill(box, title, h('ul', { class: 'runners' }, runners.map((r) => h('li', { class: 'runner', 'data-runner-id': r.id, 'data-profile': r.profile || '' },
    h('div', { class: 'runner-head' },
      h('span', { class: 'dot ' + (r.paused ? 'paused' : r.online ? 'online' : 'offline'), 'aria-hidden': 'true' }),
      h('strong', { class: 'profile', text: r.profile ? t('builds.runners.profile', { name: r.profile }) : r.description }),
      h('span', { class: 'runner-status ' + (r.online ? 'ok' : 'bad'), 'data-status': r.status, text: r.paused ? t('builds.runners.paused') : t('runner.' + r.status, null, r.status) })),
    h('div', { class: 'muted small mono', text: '#' + r.id + ' · ' + r.description }),
    h('div', { class: 'muted small', title: absTime(r.contacted_at), text: r.contacted_at ? t('builds.runners.contact', { when: ago(r.contacted_at) }) : t('builds.runners.never') }),
    h('div', {}, (r.tags || []).map((tg) => h('span', { class: 'tag', text: tg })), r.run_untagged ? h('span', { class: 'muted small', text: ' ' + t('builds.runners.untagged') }) : null),
    !r.profile ? h('div', { class: 'muted small', text: t('builds.runners.noProfile') }) : null))));
}

// ---------------------------------------------------------------------------------------------
// Job log

function openLog(j) {
  bs.job = { project: j.project_id, id: j.id, name: j.name };
  bs.follow = true;
  bs.offset = 0;
  renderLogShell();
  renderList();
  pollTrace();
  setTimeout(() => { const el = document.getElementById('job-log'); if (el) el.scrollIntoView({ block: 'nearest' }); }, 0);
}

function closeLog() {
  clearTimeout(bs.traceTimer);
  bs.job = null;
  const el = document.getElementById('job-log');
  if (el) { el.hidden = true; fill(el); }
  renderList();
}

function renderLogShell() {
  const el = document.getElementById('job-log');
  if (!el || !bs.job) return;
  bs.offset = 0;
  bs.trace = { ansi: { fg: null, bg: null, bold: false, italic: false, underline: false }, parser: new TraceParser(), lineNo: 0, job: null };
  const follow = h('input', { type: 'checkbox', id: 'job-log-follow', checked: bs.follow, onchange: (e) => { bs.follow = e.target.checked; if (bs.follow) { scrollLog(true); pollTrace(); } } });
  const wrap = h('input', { type: 'checkbox', id: 'job-log-wrap', checked: bs.wrap, onchange: (e) => { bs.wrap = e.target.checked; document.getElementById('job-log-lines').classList.toggle('wrap', bs.wrap); } });
  const times = h('input', { type: 'checkbox', id: 'job-log-times', checked: bs.times, onchange: (e) => { bs.times = e.target.checked; document.getElementById('job-log-lines').classList.toggle('times', bs.times); } });
  el.hidden = false;
  fill(el,
    h('div', { class: 'toolbar' },
      h('h3', { id: 'job-log-title', text: t('builds.log.title', { name: bs.job.name, id: bs.job.id }) }),
      h('span', { id: 'job-log-status' }),
      h('span', { class: 'grow' }),
      h('span', { class: 'job-log-actions', id: 'job-log-actions' }),
      h('label', { class: 'check' }, follow, ' ' + t('builds.log.follow')),
      h('label', { class: 'check' }, wrap, ' ' + t('builds.log.wrap')),
      h('label', { class: 'check', title: t('builds.log.times.hint') }, times, ' ' + t('builds.log.times')),
      h('button', { class: 'small', id: 'job-log-close', onclick: closeLog, text: t('builds.log.close') })),
    h('div', { id: 'job-log-note', class: 'job-log-note' }),
    h('div', { class: 'log-lines job-lines' + (bs.wrap ? ' wrap' : '') + (bs.times ? ' times' : ''), id: 'job-log-lines', role: 'log', 'aria-live': 'off' },
      h('p', { class: 'muted', id: 'job-log-empty', text: t('loading') })),
    h('div', { class: 'muted small', id: 'job-log-size' }));
}

function scrollLog(force) {
  const box = document.getElementById('job-log-lines');
  if (box && (force || bs.follow)) box.scrollTop = box.scrollHeight;
}

async function pollTrace() {
  clearTimeout(bs.traceTimer);
  if (!onPage() || !bs.job) return;
  const want = bs.job;
  let page;
  try {
    page = await api('GET', `builds/projects/${want.project}/jobs/${want.id}/trace?offset=${bs.offset}`);
  } catch (e) {
    if (bs.job === want) {
      const note = document.getElementById('job-log-note');
      if (note) fill(note, h('p', { class: 'error-text', text: e.message }));
      bs.traceTimer = setTimeout(pollTrace, TRACE_POLL * 3);
    }
    return;
  }
  if (bs.job !== want || !onPage()) return;
  if (page.reset) renderLogShell();
  appendLog(page.data, page.complete);
  bs.offset = page.next;
  renderLogHead(page);
  if (page.more) { bs.traceTimer = setTimeout(pollTrace, 0); return; }
  if (!page.complete && bs.follow) bs.traceTimer = setTimeout(pollTrace, document.hidden ? TRACE_POLL * 5 : TRACE_POLL);
}

function renderLogHead(page) {
  const j = page.job;
  j.project_id = bs.job.project;
  const st = document.getElementById('job-log-status');
  if (st) fill(st, status(j.status, { stuck: !!j.stuck, allowed: j.allow_failure }));
  const acts = document.getElementById('job-log-actions');
  if (acts) fill(acts, jobButtons(j).slice(1));
  const note = document.getElementById('job-log-note');
  if (note) {
    let msg = null;
    if (j.stuck) msg = stuckHint(j);
    else if (j.status === 'pending') msg = h('p', { class: 'muted', text: t('builds.log.waiting') });
    else if (j.status === 'manual') msg = h('p', { class: 'muted', text: t('builds.log.manual') });
    else if (j.status === 'created') msg = h('p', { class: 'muted', text: t('builds.log.created') });
    else if (j.status === 'running') msg = h('p', { class: 'muted following', text: t('builds.log.following') });
    else if (page.complete) msg = h('p', { class: 'muted', text: t('builds.log.ended') });
    fill(note, msg);
  }
  const size = document.getElementById('job-log-size');
  if (size) size.textContent = fmtSize(page.size);
  const empty = document.getElementById('job-log-empty');
  if (empty) empty.textContent = t('builds.log.empty');
}

// --- Rendering a GitLab job log: the runner's line headers (tracefmt.js), ANSI colours (SGR),
// section markers, carriage returns; stderr lines marked.

const CSI = /\x1b\[([0-9;?]*)([A-Za-z])/g;

// appendLog draws the lines a chunk completes, then the lines that may still change (a line
// without its line feed, one the runner may continue) provisionally; at the log's end all.
function appendLog(data, ended) {
  const box = document.getElementById('job-log-lines');
  if (!box) return;
  const tr = bs.trace;
  const done = data ? tr.parser.feed(data) : [];
  if (ended) done.push(...tr.parser.flush());
  const pending = tr.parser.pending();
  const empty = document.getElementById('job-log-empty');
  if (empty && (done.length || pending.length)) empty.remove();
  box.querySelectorAll('.line.partial').forEach((el) => el.remove());
  const frag = document.createDocumentFragment();
  for (const l of done) frag.append(logLine(l, ++tr.lineNo, false));
  // Provisional lines are drawn again when they complete: they must not move the colour state.
  const saved = { ...tr.ansi };
  pending.forEach((l, i) => frag.append(logLine(l, tr.lineNo + 1 + i, true)));
  Object.assign(tr.ansi, saved);
  box.append(frag);
  while (box.childElementCount > 20000) box.firstElementChild.remove();
  scrollLog(false);
}

function logLine(line, n, partial) {
  const l = visibleText(line.text);
  const tx = h('span', { class: 'tx' });
  const st = bs.trace.ansi;
  let last = 0;
  for (const m of l.matchAll(CSI)) {
    if (m.index > last) tx.append(span(l.slice(last, m.index), st));
    if (m[2] === 'm') sgr(st, m[1]);
    last = m.index + m[0].length;
  }
  if (last < l.length) tx.append(span(l.slice(last), st));
  const ts = h('span', { class: 'ts', 'aria-hidden': 'true', text: line.time ? clock(line.time) : '' });
  if (line.time) ts.title = line.time;
  const cls = 'line' + (partial ? ' partial' : '') + (line.stderr ? ' err' : '');
  return h('div', { class: cls }, h('span', { class: 'ln', 'aria-hidden': 'true', text: n }), ts, tx);
}

// clock: the runner's UTC time as local wall-clock time with milliseconds.
function clock(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const p = (x, w = 2) => String(x).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function span(text, st) {
  const cls = [];
  if (st.fg !== null) cls.push('fg' + st.fg);
  if (st.bg !== null) cls.push('bg' + st.bg);
  if (st.bold) cls.push('b');
  if (st.italic) cls.push('i');
  if (st.underline) cls.push('u');
  return cls.length ? h('span', { class: cls.join(' '), text }) : document.createTextNode(text);
}

function sgr(st, params) {
  const codes = params === '' ? [0] : params.split(';').map(Number);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) { st.fg = null; st.bg = null; st.bold = st.italic = st.underline = false; }
    else if (c === 1) st.bold = true;
    else if (c === 3) st.italic = true;
    else if (c === 4) st.underline = true;
    else if (c === 22) st.bold = false;
    else if (c === 23) st.italic = false;
    else if (c === 24) st.underline = false;
    else if (c >= 30 && c <= 37) st.fg = c - 30;
    else if (c >= 90 && c <= 97) st.fg = c - 90 + 8;
    else if (c === 39) st.fg = null;
    else if (c >= 40 && c <= 47) st.bg = c - 40;
    else if (c >= 100 && c <= 107) st.bg = c - 100 + 8;
    else if (c === 49) st.bg = null;
    else if (c === 38 || c === 48) i += codes[i + 1] === 5 ? 2 : 4; // 256 and true colour: not drawn
  }
}
