// Forgebox web app: overview, activity, logs, settings, runners and doctor, over the JSON API
// under api/v1. Every URL is relative: the app runs at / and inside DSM's app-window iframe.
// Text comes from i18n.js; data from the API is only ever put into the page as text.
import { t, applyI18n, detectLang, setLang, getLang } from './i18n.js';
import { initBuilds, renderBuilds } from './builds.js';
import { initMaintenance, renderMaintenance } from './maintenance.js';
import { mtext, etext } from './messages-i18n.js';

// ---------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, code, message, fields) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields || [];
  }
}

async function api(method, path, body, headers) {
  const opts = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json', 'X-Forgebox-CSRF': '1', ...headers },
  };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch('api/v1/' + path, opts);
  } catch (e) {
    throw new ApiError(0, 'network', t('error.network'));
  }
  if (res.status === 401) {
    // The session ended (or the token was replaced): the page itself shows the login form.
    location.reload();
    throw new ApiError(401, 'unauthorized', t('error.unauthorized'));
  }
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const err = new ApiError(res.status, e.code || 'internal', mtext(e.text, e.message || t('error.generic', { status: res.status })) + (e.advice && e.advice.code && getLang() !== 'en' ? ' → ' + mtext(e.advice, '') : ''), e.fields);
    err.text = e.text; // the message's code, so a page that keeps the error can show it again in another language
    throw err;
  }
  return data;
}

// ---------------------------------------------------------------------------------------------
// DOM helpers

// fill replaces el's children, skipping the null and false that conditionals leave.
function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const svgNS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

// toast shows a short message: a string, or a function that says it in the current language,
// so that a toast still showing when the language changes follows it (rerender).
function toast(text, kind) {
  const el = document.getElementById('toast');
  toast.text = text;
  el.textContent = typeof text === 'function' ? text() : text;
  el.className = 'toast ' + (kind || '');
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, kind === 'error' ? 8000 : 4000);
}

function fmtBytes(n) {
  if (n === undefined || n === null) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i >= 2 ? v.toFixed(v < 10 ? 1 : 0) : Math.round(v)) + ' ' + u[i];
}

function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d > 0) return t('dur.dh', { d, h: hh });
  if (hh > 0) return t('dur.hm', { h: hh, m });
  if (m > 0) return t('dur.m', { m });
  return t('dur.s', { s });
}

function fmtTime(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  return d.toLocaleTimeString(getLang(), { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

const COMPONENT_NAMES = { postgres: 'PostgreSQL', redis: 'Redis', gitlab: 'GitLab', runner: 'GitLab Runner' };
const componentName = (c) => COMPONENT_NAMES[c] || c;

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast(() => t('toast.copied'));
  } catch (e) {
    toast(() => t('toast.copyFailed'), 'error');
  }
}

// ---------------------------------------------------------------------------------------------
// State and polling

const state = {
  view: 'overview',
  status: null,
  statusError: null,
  events: [],
  cursor: 0,
  cursorReady: false,
  op: null,          // the operation the progress panel follows
  opResult: null,    // its final record, once done
  doctor: null,
  session: null,
  revealed: null,
};

const MAX_EVENTS = 3000;

async function refreshStatus() {
  try {
    state.status = await api('GET', 'status');
    state.statusError = null;
    const running = state.status.operation;
    if (running && (!state.op || state.op.id !== running.id)) {
      state.op = running;
      state.opResult = null;
    }
    if (!running && state.op && !state.opResult) {
      try {
        const r = await api('GET', 'operations/' + state.op.id);
        state.opResult = r.operation;
      } catch (e) { /* the controller restarted: leave the panel as it is */ }
    }
  } catch (e) {
    state.statusError = e;
  }
  renderChrome();
  if (state.view === 'overview') renderOverview();
}

async function refreshEvents() {
  let ended = false;
  try {
    for (let i = 0; i < 5; i++) {
      const page = await api('GET', 'events?after=' + state.cursor + '&limit=1000');
      if (page.reset) state.events = [];
      if (!state.cursorReady) {
        state.cursorReady = true;
      }
      state.events.push(...page.events);
      if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
      state.cursor = page.cursor;
      // An operation ended: show the stack as it is now, without waiting for the next poll.
      if (state.cursorReady && page.events.some((e) => e.kind === 'done' || e.kind === 'error')) ended = true;
      if (!page.more) break;
    }
  } catch (e) { return; }
  if (ended) refreshStatus();
  if (state.view === 'overview') renderProgress();
  if (state.view === 'activity') renderActivity();
}

function opRunning() {
  return !!(state.status && state.status.operation);
}

// Errors of the page itself are kept here (and shown in the console), so a poll loop never
// dies silently and the browser tests can see them.
window.forgeboxErrors = [];
function noteError(e) {
  window.forgeboxErrors.push(String((e && e.stack) || e));
  console.error(e);
}
window.addEventListener('error', (ev) => noteError(ev.error || ev.message));
window.addEventListener('unhandledrejection', (ev) => noteError(ev.reason));

// schedule polls fn while wanted() says its data is on screen: never while the window is hidden
// (DSM's app window minimised, another tab), so a window nobody looks at asks the controller
// nothing, and its status requests do not keep the controller's stats sampling on. A skipped
// turn costs a timer, not a request.
function schedule(fn, fast, slow, wanted) {
  const loop = async () => {
    if (!document.hidden && wanted()) {
      try {
        await fn();
      } catch (e) {
        noteError(e);
      }
    }
    setTimeout(loop, opRunning() ? fast : slow);
  };
  loop();
}

// The status feeds the overview and the chrome's operation state; the activity feed the
// overview's progress panel and the activity page. Other pages poll what they show themselves.
const statusWanted = () => state.view === 'overview' || opRunning() || !state.status;
const eventsWanted = () => state.view === 'overview' || state.view === 'activity' || opRunning();

// ---------------------------------------------------------------------------------------------
// Chrome: top bar, tabs, banner

function renderChrome() {
  const s = state.status;
  document.getElementById('stack-name').textContent = s ? s.stack.name : '';
  const pill = document.getElementById('engine-pill');
  const banner = document.getElementById('banner');
  if (state.statusError) {
    pill.className = 'pill bad';
    pill.textContent = t('engine.noController');
    banner.hidden = false;
    banner.textContent = state.statusError.message;
  } else if (s && s.engine.ok) {
    pill.className = 'pill ok';
    pill.textContent = t('engine.ok', { version: s.engine.info.server_version, api: s.engine.info.api_version });
    banner.hidden = true;
  } else if (s) {
    pill.className = 'pill bad';
    pill.textContent = t('engine.down');
    banner.hidden = false;
    banner.textContent = t('engine.downLong') + ' ' + (s.engine.error || '');
  }
  for (const a of document.querySelectorAll('#tabs a')) {
    a.classList.toggle('active', a.dataset.view === state.view);
    if (a.dataset.view === state.view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

// ---------------------------------------------------------------------------------------------
// Overview

const STATE_CLASS = {
  running: 'ok', healthy: 'ok', starting: 'warn', partial: 'warn', degraded: 'bad', unhealthy: 'bad',
  stopped: 'idle', absent: 'idle', missing: 'idle', exited: 'bad', dead: 'bad', restarting: 'warn',
  created: 'idle', paused: 'idle', unknown: 'idle',
};

function badge(kind, value) {
  return h('span', { class: 'badge ' + (STATE_CLASS[value] || 'idle'), 'data-state': value, text: t(kind + '.' + value, null, value) });
}

async function startOp(path, confirmKey) {
  if (confirmKey && !confirm(t(confirmKey))) return;
  try {
    const r = await api('POST', path);
    state.op = r.operation;
    state.opResult = null;
    toast(() => t('toast.started'));
  } catch (e) {
    toast(e.message, 'error');
  }
  refreshStatus();
  refreshEvents();
}

function renderOverview() {
  const view = document.getElementById('view');
  const s = state.status;
  if (!s) {
    fill(view, h('p', { class: 'muted', text: state.statusError ? state.statusError.message : t('loading') }));
    return;
  }
  const busy = !!s.operation;
  const stackBar = h('section', { class: 'card stack-bar' },
    h('div', { class: 'stack-title' },
      h('h2', { text: t('overview.stack') }),
      badge('stack', s.stack.state),
      busy ? h('span', { class: 'muted', text: t('overview.busy', { op: t('op.' + s.operation.op, null, s.operation.op) }) }) : null),
    h('div', { class: 'actions' },
      h('button', { class: 'primary', id: 'btn-up', disabled: busy || !s.engine.ok, onclick: () => startOp('up'), text: t('action.start') }),
      h('button', { id: 'btn-restart', disabled: busy || !s.engine.ok, onclick: () => startOp('restart', 'confirm.restart'), text: t('action.restart') }),
      h('button', { id: 'btn-down', disabled: busy || !s.engine.ok, onclick: () => startOp('down', 'confirm.stop'), text: t('action.stop') })));

  const progress = h('section', { class: 'card progress-card', id: 'progress' });
  const grid = h('div', { class: 'components' }, s.components.map(componentCard));
  const side = h('div', { class: 'side' }, accessCard(s), checklistCard(s));
  fill(view, stackBar, progress, h('div', { class: 'overview-grid' }, h('div', {}, h('h3', { class: 'section-title', text: t('overview.components') }), grid), side));
  renderProgress();
}

function componentCard(c) {
  const exists = c.state !== 'missing';
  const running = c.state === 'running';
  const busy = opRunning();
  // GitLab's health is its readiness and the runner's whether GitLab sees its runners online
  // (stack.componentCheck); empty when that could not be asked.
  const health = running ? (c.health || 'unknown') : null;
  const since = c.started_at ? fmtDuration(Date.now() - new Date(c.started_at).getTime()) : '';
  const mem = c.memory;
  return h('article', { class: 'card component', 'data-component': c.component },
    h('header', {},
      h('h4', { text: componentName(c.component) }),
      h('div', { class: 'badges' }, badge('state', c.state), health ? badge('health', health) : null)),
    h('dl', {},
      h('dt', { text: t('comp.image') }), h('dd', { class: 'mono', title: c.image, text: c.image || '–' }),
      c.helper_image ? h('dt', { text: t('comp.helper') }) : null,
      c.helper_image ? h('dd', { class: 'mono', title: c.helper_image,
        text: c.helper_image + (c.helper_state === 'present' ? '' : ' (' + t('comp.helper_missing') + ')') }) : null,
      h('dt', { text: t('comp.uptime') }), h('dd', { text: running ? since : '–' }),
      h('dt', { text: t('comp.memory') }), h('dd', { text: mem ? fmtBytes(mem.usage) + (mem.limit ? ' / ' + fmtBytes(mem.limit) : '') : '–' }),
      h('dt', { text: t('comp.cpu') }), h('dd', { text: c.cpu_percent !== undefined && c.cpu_percent !== null ? c.cpu_percent.toFixed(1) + ' %' : '–' })),
    sparkline(c.memory_history || []),
    exists && !c.up_to_date ? h('p', { class: 'note', text: t('comp.changed') }) : null,
    h('footer', {},
      h('button', { class: 'link', onclick: () => { logsState.component = c.component; go('logs'); }, text: t('action.logs') }),
      running
        ? h('button', { class: 'small', disabled: busy, onclick: () => startOp('components/' + c.component + '/restart'), text: t('action.restart') })
        : h('button', { class: 'small', disabled: busy, onclick: () => startOp('components/' + c.component + '/up'), text: t('action.start') }),
      exists ? h('button', { class: 'small', disabled: busy, onclick: () => startOp('components/' + c.component + '/down', 'confirm.stopOne'), text: t('action.stop') }) : null));
}

function sparkline(values) {
  const w = 220, hgt = 36;
  const el = svg('svg', { class: 'spark', viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': t('comp.memoryTrend') });
  if (values.length < 2) {
    el.append(svg('line', { x1: 0, y1: hgt - 1, x2: w, y2: hgt - 1, class: 'spark-empty' }));
    return el;
  }
  const max = Math.max(...values) * 1.1 || 1;
  const step = w / (values.length - 1);
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(hgt - 2 - (v / max) * (hgt - 4)).toFixed(1)}`);
  el.append(svg('polygon', { points: `0,${hgt} ${pts.join(' ')} ${w},${hgt}`, class: 'spark-fill' }));
  el.append(svg('polyline', { points: pts.join(' '), class: 'spark-line' }));
  return el;
}

function accessCard(s) {
  const g = s.gitlab;
  const row = (label, value, id) => h('div', { class: 'url-row' },
    h('span', { class: 'label', text: label }),
    h('code', { id, title: value, text: value }),
    h('button', { class: 'small', onclick: () => copyText(value), text: t('action.copy') }));
  const pw = state.revealed
    ? h('div', { class: 'secret' }, h('span', { class: 'label', text: t('access.rootPassword') }), h('code', { id: 'root-password', text: state.revealed }),
      h('button', { class: 'small', onclick: () => copyText(state.revealed), text: t('action.copy') }))
    : h('button', { id: 'btn-reveal', disabled: !g.root_password_available, onclick: reveal, text: t('access.reveal') });
  return h('section', { class: 'card access' },
    h('h3', { text: t('access.title') }),
    row(t('access.web'), g.url, 'gitlab-url'),
    row(t('access.ssh'), g.ssh_url, 'gitlab-ssh'),
    g.host_source === 'hostname' ? h('p', { class: 'note', text: t('access.hostHint', { host: g.host }) }) : null,
    h('div', { class: 'root-pw' }, h('p', { class: 'muted small', text: g.root_password_available ? t('access.rootHelp') : t('access.rootNotYet') }), pw));
}

async function reveal() {
  try {
    const r = await api('POST', 'gitlab/root-password/reveal');
    state.revealed = r.password;
    setTimeout(() => { state.revealed = null; if (state.view === 'overview') renderOverview(); }, 60000);
  } catch (e) {
    toast(e.message, 'error');
  }
  renderOverview();
}

function checklistCard(s) {
  const comps = s.components.filter((c) => !c.component.includes(' '));
  const all = (f) => comps.length > 0 && comps.every(f);
  const runner = comps.find((c) => c.component === 'runner');
  const items = [
    ['check.engine', s.engine.ok, null],
    ['check.settings', s.config_file.exists, 'settings'],
    ['check.doctor', state.doctor ? !state.doctor.failed : null, 'doctor'],
    ['check.started', all((c) => c.state === 'running'), null],
    ['check.healthy', all((c) => c.state === 'running' && (c.health === 'healthy' || c.health === '')), null],
    ['check.rootpw', s.gitlab.root_password_available, null],
    ['check.runner', runner ? runner.state === 'running' : null, 'runners'],
  ];
  return h('section', { class: 'card checklist' },
    h('h3', { text: t('check.title') }),
    h('ol', {}, items.map(([key, ok, link]) => h('li', { class: ok === true ? 'done' : ok === false ? 'todo' : 'unknown' },
      h('span', { class: 'tick', 'aria-hidden': 'true', text: ok === true ? '✓' : '' }),
      link ? h('a', { href: '#' + link, text: t(key) }) : h('span', { text: t(key) })))));
}

// Progress of the followed operation, from the activity feed: planned steps with their
// reasons, per-layer pull progress, health waits, and the outcome.
function opProgress() {
  const op = state.op;
  if (!op) return null;
  const evs = state.events.filter((e) => e.seq > op.first_event);
  const p = { steps: [], current: -1, pulls: new Map(), wait: null, done: null, error: null, infos: [] };
  for (const e of evs) {
    if (e.op === 'engine') continue;
    switch (e.kind) {
      // Steps are matched by their ID, never by their words (which are in the reader's language).
      case 'plan':
        if (!e.id) { p.infos.push(e); break; }
        if (!p.steps.some((s) => s.id === e.id)) p.steps.push({ id: e.id, text: etext(e), kind: e.args && e.args.action ? e.args.action.code : '' });
        break;
      case 'step': {
        const i = e.id ? p.steps.findIndex((s) => s.id === e.id) : -1;
        if (i >= 0) p.current = i;
        else p.infos.push(e);
        break;
      }
      case 'pull': {
        const img = p.pulls.get(e.image) || new Map();
        if (e.layer) {
          const l = img.get(e.layer) || { current: 0, total: 0, status: '' };
          l.status = etext(e);
          if (e.total) { l.current = e.current; l.total = e.total; }
          if (e.status === 'done' && l.total) l.current = l.total;
          img.set(e.layer, l);
        }
        p.pulls.set(e.image, img);
        break;
      }
      case 'wait': p.wait = etext(e); break;
      case 'info': p.infos.push(e); break;
      case 'error': p.error = etext(e); break;
      case 'done': p.done = etext(e); break;
    }
  }
  // The operation's own record is the edge: its error carries the advice, said once.
  if (state.opResult && state.opResult.state === 'failed') {
    const r = state.opResult;
    p.error = (r.error ? mtext(r.error_text, r.error) : p.error || '') + (r.advice && r.advice.code ? '\n→ ' + mtext(r.advice, '') : '');
  }
  return p;
}

function renderProgress() {
  const el = document.getElementById('progress');
  if (!el) return;
  const p = opProgress();
  if (!p) { el.hidden = true; return; }
  el.hidden = false;
  const op = state.op;
  const finished = !!(p.done || p.error || state.opResult);
  const total = Math.max(p.steps.length, 1);
  let frac = 0;
  if (finished) frac = 1;
  else if (p.current >= 0) {
    frac = p.current / total;
    const cur = p.steps[p.current];
    if (cur && cur.kind === 'action.pull') {
      let c = 0, tt = 0;
      for (const img of p.pulls.values()) for (const l of img.values()) { c += l.current; tt += l.total; }
      if (tt > 0) frac += (c / tt) / total;
    }
  }
  const title = t('op.' + op.op, null, op.op) + (op.component ? ' · ' + componentName(op.component) : '');
  const stateText = p.error ? t('progress.failed') : finished ? t('progress.done') : t('progress.running');
  const bar = h('div', { class: 'bar' + (p.error ? ' bad' : finished ? ' ok' : ''), role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(frac * 100) }, h('div', { class: 'fill' }));
  bar.firstChild.style.width = Math.round(frac * 100) + '%';
  const steps = h('ol', { class: 'steps' }, p.steps.map((s, i) => h('li', {
    class: finished && !p.error ? 'done' : i < p.current ? 'done' : i === p.current ? (p.error ? 'failed' : 'current') : '',
  }, s.text)));
  const pulls = [];
  for (const [image, layers] of p.pulls) {
    let c = 0, tt = 0;
    for (const l of layers.values()) { c += l.current; tt += l.total; }
    const pb = h('div', { class: 'bar thin' }, h('div', { class: 'fill' }));
    pb.firstChild.style.width = (tt ? Math.round((c / tt) * 100) : (finished ? 100 : 0)) + '%';
    pulls.push(h('div', { class: 'pull' },
      h('div', { class: 'pull-head' }, h('code', { text: image }), h('span', { class: 'muted', text: tt ? fmtBytes(c) + ' / ' + fmtBytes(tt) : t('progress.layers', { n: layers.size }) })),
      pb,
      h('ul', { class: 'layers' }, [...layers].slice(0, 12).map(([id, l]) => h('li', {}, h('code', { text: id.slice(0, 12) }), ' ', l.status,
        l.total ? ' ' + Math.round((l.current / l.total) * 100) + '%' : '')))));
  }
  fill(el, 
    h('div', { class: 'progress-head' },
      h('h3', { text: title }),
      h('span', { class: 'badge ' + (p.error ? 'bad' : finished ? 'ok' : 'warn'), id: 'op-state', 'data-state': p.error ? 'failed' : finished ? 'done' : 'running', text: stateText }),
      finished ? h('button', { class: 'link', onclick: () => { state.op = null; renderProgress(); }, text: t('action.dismiss') }) : null),
    bar,
    p.steps.length ? steps : null,
    pulls.length ? h('div', { class: 'pulls' }, pulls) : null,
    !finished && p.wait ? h('p', { class: 'wait', text: p.wait }) : null,
    p.error ? h('pre', { class: 'error-box', text: p.error }) : null,
    p.done ? h('p', { class: 'ok-text', text: p.done }) : null);
}

// ---------------------------------------------------------------------------------------------
// Activity

function renderActivity() {
  const view = document.getElementById('view');
  const list = state.events.filter((e) => e.kind !== 'pull').slice(-500).reverse();
  fill(view, h('section', { class: 'card' },
    h('h2', { text: t('activity.title') }),
    list.length === 0 ? h('p', { class: 'muted', text: t('activity.empty') }) : h('table', { class: 'events' },
      h('tbody', {}, list.map((e) => h('tr', { class: 'kind-' + e.kind },
        h('td', { class: 'time', text: fmtTime(e.time) }),
        h('td', {}, h('span', { class: 'kind', text: t('kind.' + e.kind, null, e.kind) })),
        h('td', { class: 'muted', text: e.component ? componentName(e.component) : '' }),
        h('td', { class: 'msg', text: etext(e) })))))));
}

// ---------------------------------------------------------------------------------------------
// Logs

const logsState = { component: null, tail: 200, follow: true, wrap: false, cursor: '', timer: null, lines: 0 };

function renderLogs() {
  const view = document.getElementById('view');
  const comps = state.status ? state.status.components.map((c) => c.component) : [];
  if (!logsState.component && comps.length) logsState.component = comps[0];
  const sel = h('select', { id: 'log-component', onchange: (e) => { logsState.component = e.target.value; restartLogs(); } },
    comps.map((c) => h('option', { value: c, selected: c === logsState.component }, componentName(c))));
  const tail = h('select', { id: 'log-tail', onchange: (e) => { logsState.tail = +e.target.value; restartLogs(); } },
    [100, 200, 1000, 5000].map((n) => h('option', { value: n, selected: n === logsState.tail }, t('logs.lastN', { n }))));
  const follow = h('input', { type: 'checkbox', id: 'log-follow', checked: logsState.follow, onchange: (e) => { logsState.follow = e.target.checked; if (logsState.follow) pollLogs(); } });
  const wrap = h('input', { type: 'checkbox', id: 'log-wrap', checked: logsState.wrap, onchange: (e) => { logsState.wrap = e.target.checked; document.getElementById('log-lines').classList.toggle('wrap', logsState.wrap); } });
  fill(view, h('section', { class: 'card logs' },
    h('div', { class: 'toolbar' },
      h('h2', { text: t('logs.title') }),
      h('label', {}, t('logs.component') + ' ', sel),
      h('label', {}, tail),
      h('label', { class: 'check' }, follow, ' ' + t('logs.follow')),
      h('label', { class: 'check' }, wrap, ' ' + t('logs.wrap'))),
    h('div', { class: 'log-lines' + (logsState.wrap ? ' wrap' : ''), id: 'log-lines', role: 'log', 'aria-live': 'off' })));
  restartLogs();
}

function restartLogs() {
  logsState.cursor = '';
  logsState.lines = 0;
  const box = document.getElementById('log-lines');
  if (box) fill(box);
  pollLogs();
}

async function pollLogs() {
  clearTimeout(logsState.timer);
  if (state.view !== 'logs' || !logsState.component) return;
  const box = document.getElementById('log-lines');
  const comp = logsState.component;
  const q = logsState.cursor ? 'after=' + encodeURIComponent(logsState.cursor) : 'tail=' + logsState.tail;
  try {
    const page = await api('GET', 'components/' + encodeURIComponent(comp) + '/logs?' + q);
    if (comp !== logsState.component || state.view !== 'logs') return;
    if (!page.exists && logsState.lines === 0) {
      fill(box, h('p', { class: 'muted', text: t('logs.noContainer') }));
    } else {
      if (logsState.lines === 0) fill(box);
      const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
      const frag = document.createDocumentFragment();
      for (const l of page.lines) {
        frag.append(h('div', { class: 'line ' + l.stream }, h('span', { class: 'ts', text: fmtTime(l.time) }), h('span', { class: 'tx', text: l.text })));
      }
      box.append(frag);
      logsState.lines += page.lines.length;
      while (box.childElementCount > 5000) box.firstElementChild.remove();
      if (logsState.lines === 0) fill(box, h('p', { class: 'muted', id: 'log-empty', text: t('logs.empty') }));
      if (atBottom || logsState.lines === page.lines.length) box.scrollTop = box.scrollHeight;
    }
    logsState.cursor = page.cursor || logsState.cursor;
  } catch (e) {
    fill(box, h('p', { class: 'error-text', text: e.message }));
  }
  if (logsState.follow) logsState.timer = setTimeout(pollLogs, 2000);
}

// ---------------------------------------------------------------------------------------------
// Settings

const SETTINGS = [
  ['stack', [['stack.name', 'text'], ['stack.data_dir', 'text', { readonly: true }], ['stack.share_dir', 'text'],
    ['stack.pull_policy', 'select', { options: ['missing', 'always', 'never'] }],
    ['stack.pull_via', 'select', { options: ['auto', 'forgebox', 'engine'] }], ['stack.registry_mirrors', 'list']]],
  ['gitlab', [['gitlab.host', 'text'], ['gitlab.http_port', 'number'], ['gitlab.ssh_port', 'number'],
    ['gitlab.flavour', 'select', { options: ['sameersbn', 'omnibus'] }], ['gitlab.image', 'text'],
    ['gitlab.memory', 'select', { options: ['small', 'standard'] }], ['gitlab.admin_email', 'email'],
    ['gitlab.time_zone', 'text']]],
  ['postgres', [['postgres.image', 'text'], ['postgres.superuser', 'text']]],
  ['redis', [['redis.image', 'text']]],
  ['runner', [['runner.image', 'text'], ['runner.helper_image', 'text'], ['runner.concurrent', 'number']]],
];

function getPath(obj, key) {
  return key.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function setPath(obj, key, value) {
  const parts = key.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) { o[p] = o[p] || {}; o = o[p]; }
  o[parts[parts.length - 1]] = value;
}

function fieldId(key) { return 'f-' + key.replace(/[^a-z0-9_]+/gi, '-'); }

function field(key, type, opts, value) {
  const id = fieldId(key);
  let input;
  if (type === 'select') {
    input = h('select', { id, name: key }, opts.options.map((o) => h('option', { value: o, selected: o === value, 'data-i18n': 'opt.' + key + '.' + o, 'data-i18n-fallback': o }, t('opt.' + key + '.' + o, null, o))));
  } else if (type === 'checkbox') {
    input = h('input', { id, name: key, type: 'checkbox', checked: !!value });
  } else {
    // A list (stack.registry_mirrors) is edited as one line, its entries separated by commas.
    if (type === 'list') { type = 'text'; value = (value || []).join(', '); }
    input = h('input', { id, name: key, type, value: value ?? '', readonly: opts && opts.readonly, spellcheck: 'false', 'aria-describedby': id + '-help ' + id + '-err' });
  }
  return h('div', { class: 'field' + (type === 'checkbox' ? ' checkbox' : ''), 'data-key': key },
    h('label', { for: id, 'data-i18n': 'field.' + key, text: t('field.' + key) }),
    input,
    h('p', { class: 'help', id: id + '-help', 'data-i18n': 'help.' + key, 'data-i18n-fallback': '', text: t('help.' + key, null, '') }),
    h('p', { class: 'field-error', id: id + '-err', role: 'alert', hidden: true }));
}

function clearFieldErrors(form) {
  for (const f of form.querySelectorAll('.field.invalid')) {
    f.classList.remove('invalid');
    const inp = f.querySelector('input,select');
    if (inp) inp.removeAttribute('aria-invalid');
    const err = f.querySelector('.field-error');
    err.hidden = true;
    err.textContent = '';
  }
  const box = form.querySelector('.form-errors');
  if (box) { box.hidden = true; fill(box); }
}

// showFieldErrors puts each API field error beside its field; keyOf maps an API key to the
// form's key (or null when the form has no such field).
function showFieldErrors(form, fields, keyOf) {
  const rest = [];
  let first = null;
  for (const fe of fields) {
    const key = keyOf ? keyOf(fe.key) : fe.key;
    const f = key ? form.querySelector(`.field[data-key="${CSS.escape(key)}"]`) : null;
    const text = mtext(fe.text, fe.message) + (fe.hint ? ' — ' + mtext(fe.advice, fe.hint) : '');
    if (!f) { rest.push((fe.key ? fe.key + ': ' : '') + text); continue; }
    f.classList.add('invalid');
    const inp = f.querySelector('input,select');
    if (inp) inp.setAttribute('aria-invalid', 'true');
    const err = f.querySelector('.field-error');
    err.textContent = err.textContent ? err.textContent + '; ' + text : text;
    err.hidden = false;
    first = first || inp;
  }
  const box = form.querySelector('.form-errors');
  if (rest.length && box) {
    fill(box, ...rest.map((r) => h('li', { text: r })));
    box.hidden = false;
  }
  if (first) first.focus();
}

async function renderSettings() {
  const view = document.getElementById('view');
  fill(view, h('p', { class: 'muted', 'data-i18n': 'loading', text: t('loading') }));
  let page;
  try { page = await api('GET', 'config'); } catch (e) { fill(view, h('p', { class: 'error-text', text: e.message })); return; }
  if (state.view !== 'settings') return;
  const cfg = page.config;
  const form = h('form', { class: 'settings', id: 'settings-form', novalidate: true },
    h('ul', { class: 'form-errors', hidden: true, role: 'alert' }),
    SETTINGS.map(([section, fields]) => h('fieldset', { class: 'card' },
      h('legend', { 'data-i18n': 'section.' + section, text: t('section.' + section) }),
      h('div', { class: 'fields' }, fields.map(([key, type, opts]) => field(key, type, opts, getPath(cfg, key)))))),
    h('div', { class: 'form-actions' },
      h('span', { class: 'muted small', text: page.exists ? t('settings.file', { path: page.path }) : t('settings.noFile', { path: page.path }) }),
      h('button', { type: 'submit', class: 'primary', id: 'settings-save', 'data-i18n': 'action.save', text: t('action.save') })));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    const body = {};
    for (const [, fields] of SETTINGS) {
      for (const [key, type, opts] of fields) {
        if (opts && opts.readonly) continue;
        const inp = form.elements.namedItem(key);
        let v = inp.value;
        if (type === 'number') v = inp.value.trim() === '' || isNaN(inp.valueAsNumber) ? inp.value : inp.valueAsNumber;
        if (type === 'list') v = inp.value.split(/[\s,]+/).filter((x) => x !== '');
        setPath(body, key, v);
      }
    }
    const btn = form.querySelector('#settings-save');
    btn.disabled = true;
    try {
      // If-Match: a file that changed since this page read it is not overwritten.
      const saved = await api('PUT', 'config', body, { 'If-Match': '"' + page.revision + '"' });
      if (saved && saved.revision) page.revision = saved.revision;
      toast(() => t('settings.saved'));
      refreshStatus();
    } catch (e) {
      if (e.code === 'invalid_config') {
        showFieldErrors(form, e.fields);
        toast(() => t('settings.invalid', { n: e.fields.length }), 'error');
      } else if (e.code === 'config_changed_on_disk') {
        toast(() => t('settings.changedOnDisk', { path: page.path }), 'error');
      } else if (e.status === 412) {
        toast(() => t('settings.stale'), 'error');
      } else {
        toast(e.message, 'error');
      }
    } finally {
      btn.disabled = false;
    }
  });
  fill(view, h('h2', { class: 'page-title', 'data-i18n': 'settings.title', text: t('settings.title') }), h('p', { class: 'muted', 'data-i18n': 'settings.intro', text: t('settings.intro') }), form);
}

// ---------------------------------------------------------------------------------------------
// Runners

const PROFILE_FIELDS = [['name', 'text'], ['image', 'text'], ['tags', 'text'], ['run_untagged', 'checkbox'],
  ['privileged', 'checkbox'], ['cpus', 'text'], ['memory', 'text'], ['concurrency', 'number']];

// PROFILE_SCOPES: whose jobs a profile's runner takes: every project's, a group's (and its
// subgroups'), or one project's. The config holds the path in group or project.
const PROFILE_SCOPES = ['instance', 'group', 'project'];

function scopeOf(p) {
  return p.group ? 'group' : p.project ? 'project' : 'instance';
}

// scopeCell says whose jobs a profile's runner takes, with the group's or project's path.
function scopeCell(p) {
  const s = scopeOf(p);
  const label = h('span', { 'data-i18n': 'profile.scope.' + s, text: t('profile.scope.' + s) });
  return s === 'instance' ? label : [label, ' ', h('span', { class: 'mono', text: p[s] })];
}

// runsOn says where a profile's jobs run: this NAS, another Docker Engine, or a cluster.
function runsOn(p) {
  if (p.executor === 'kubernetes' && p.kubernetes) {
    return [h('span', { 'data-i18n': 'profile.onKubernetes', text: t('profile.onKubernetes') }), ' ',
      h('span', { class: 'mono', text: p.kubernetes.host + ' / ' + p.kubernetes.namespace })];
  }
  if (p.docker_host) {
    return [h('span', { 'data-i18n': 'profile.onEngine', text: t('profile.onEngine') }), ' ', h('span', { class: 'mono', text: p.docker_host })];
  }
  return h('span', { 'data-i18n': 'profile.onNAS', text: t('profile.onNAS') });
}

async function renderRunners(editing) {
  const view = document.getElementById('view');
  let profiles;
  try { profiles = (await api('GET', 'runner/profiles')).profiles || []; } catch (e) { fill(view, h('p', { class: 'error-text', text: e.message })); return; }
  if (state.view !== 'runners') return;
  const table = h('table', { class: 'profiles' },
    h('thead', {}, h('tr', {}, ['name', 'image', 'tags', 'run_untagged', 'privileged', 'limits', 'concurrency', 'scope', 'runsOn', ''].map((k) => h('th', { 'data-i18n': k ? 'profile.' + k : null, text: k ? t('profile.' + k) : '' })))),
    h('tbody', {}, profiles.map((p) => h('tr', { 'data-profile': p.name },
      h('td', { class: 'strong', text: p.name }),
      h('td', { class: 'mono', text: p.image }),
      h('td', {}, (p.tags || []).map((tg) => h('span', { class: 'tag', text: tg }))),
      h('td', { text: p.run_untagged ? t('yes') : t('no') }),
      h('td', {}, p.privileged
        ? h('span', { class: 'badge warn', title: t('runners.privilegedWarning'), 'data-i18n': 'profile.privilegedYes', text: t('profile.privilegedYes') })
        : h('span', { 'data-i18n': 'no', text: t('no') })),
      h('td', { class: 'muted', text: [p.cpus ? t('profile.cpus') + ' ' + p.cpus : '', p.memory ? t('profile.memory') + ' ' + p.memory : ''].filter(Boolean).join(', ') || '–' }),
      h('td', { text: p.concurrency }),
      h('td', { class: 'scope' }, scopeCell(p)),
      h('td', { class: 'runs-on' }, runsOn(p)),
      h('td', { class: 'row-actions' },
        h('button', { class: 'small', onclick: () => renderRunners(p), 'data-i18n': 'action.edit', text: t('action.edit') }),
        h('button', { class: 'small danger', onclick: () => deleteProfile(p.name), 'data-i18n': 'action.delete', text: t('action.delete') }))))));
  fill(view, 
    h('div', { class: 'page-head' }, h('h2', { class: 'page-title', 'data-i18n': 'runners.title', text: t('runners.title') }),
      h('button', { class: 'primary', id: 'profile-add', onclick: () => renderRunners({}), 'data-i18n': 'runners.add', text: t('runners.add') })),
    h('p', { class: 'muted', 'data-i18n': 'runners.intro', text: t('runners.intro') }),
    // A privileged profile hands its jobs the NAS: say so above the table, by name.
    profiles.filter((p) => p.privileged).map((p) => h('p', { class: 'note privileged-warning', role: 'alert', 'data-profile': p.name },
      h('strong', { text: p.name }), ': ',
      h('span', { 'data-i18n': 'runners.privilegedWarning', text: t('runners.privilegedWarning') }))),
    h('section', { class: 'card' }, table),
    editing ? profileForm(editing) : null);
}

function profileForm(p) {
  const isNew = !p.name;
  const values = { run_untagged: false, privileged: false, concurrency: 1, ...p, tags: (p.tags || []).join(', ') };
  const form = h('form', { class: 'card profile-form', id: 'profile-form', novalidate: true },
    h('h3', { text: isNew ? t('runners.new') : t('runners.edit', { name: p.name }) }),
    h('ul', { class: 'form-errors', hidden: true, role: 'alert' }),
    h('div', { class: 'fields' }, PROFILE_FIELDS.map(([k, type]) => field(k, type, {}, values[k])),
      field('scope', 'select', { options: PROFILE_SCOPES }, scopeOf(p)),
      field('scope_path', 'text', {}, p.group || p.project || '')),
    h('div', { class: 'form-actions' },
      h('button', { type: 'button', onclick: () => renderRunners(), 'data-i18n': 'action.cancel', text: t('action.cancel') }),
      h('button', { type: 'submit', class: 'primary', 'data-i18n': 'action.save', text: t('action.save') })));
  for (const f of form.querySelectorAll('.field')) {
    const label = f.querySelector('label');
    label.dataset.i18n = 'profile.' + f.dataset.key;
    label.textContent = t(label.dataset.i18n);
    const help = f.querySelector('.help');
    help.dataset.i18n = 'help.profile.' + f.dataset.key;
    help.dataset.i18nFallback = '';
    help.textContent = t(help.dataset.i18n, null, '');
  }
  // The path is asked for only when the runner is for a group or a project, and its help says
  // which of the two.
  const scopeSel = form.elements.namedItem('scope');
  const pathField = form.querySelector('.field[data-key="scope_path"]');
  const showPath = () => {
    pathField.hidden = scopeSel.value === 'instance';
    const help = pathField.querySelector('.help');
    help.dataset.i18n = 'help.profile.scope_path.' + scopeSel.value;
    help.textContent = t(help.dataset.i18n, null, '');
  };
  for (const o of scopeSel.options) { o.dataset.i18n = 'profile.scope.' + o.value; o.textContent = t(o.dataset.i18n); }
  scopeSel.addEventListener('change', showPath);
  showPath();
  // While privileged is ticked, the form says what that gives the profile's jobs.
  const priv = form.elements.namedItem('privileged');
  const privWarning = h('p', { class: 'note privileged-warning', role: 'alert', hidden: !priv.checked, 'data-i18n': 'runners.privilegedWarning', text: t('runners.privilegedWarning') });
  priv.closest('.field').append(privWarning);
  priv.addEventListener('change', () => { privWarning.hidden = !priv.checked; });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    const el = form.elements;
    const conc = el.namedItem('concurrency');
    const body = {
      name: el.namedItem('name').value.trim(),
      image: el.namedItem('image').value.trim(),
      tags: el.namedItem('tags').value.split(',').map((s) => s.trim()).filter(Boolean),
      run_untagged: el.namedItem('run_untagged').checked,
      privileged: el.namedItem('privileged').checked,
      cpus: el.namedItem('cpus').value.trim(),
      memory: el.namedItem('memory').value.trim(),
      concurrency: isNaN(conc.valueAsNumber) ? 0 : conc.valueAsNumber,
    };
    // The config names the scope by its key: group = "team/sub" or project = "team/app".
    if (scopeSel.value !== 'instance') body[scopeSel.value] = el.namedItem('scope_path').value.trim();
    // Where the jobs run is set in the config file (docker_host, executor, kubernetes): an edit
    // here carries it over instead of dropping it.
    for (const k of ['docker_host', 'docker_cert_dir', 'executor', 'kubernetes']) {
      if (!isNew && p[k] !== undefined) body[k] = p[k];
    }
    try {
      if (isNew) await api('POST', 'runner/profiles', body);
      else await api('PUT', 'runner/profiles/' + encodeURIComponent(p.name), body);
      toast(() => t('runners.saved'));
      renderRunners();
    } catch (e) {
      if (e.code === 'invalid_config') {
        // Keys come as runner.profiles[i].field: the form has the field part.
        showFieldErrors(form, e.fields, (k) => {
          const m = /^runner\.profiles\[\d+\]\.(\w+)$/.exec(k);
          return !m ? null : (m[1] === 'group' || m[1] === 'project') ? 'scope_path' : m[1];
        });
      } else {
        toast(e.message, 'error');
      }
    }
  });
  setTimeout(() => form.scrollIntoView({ block: 'nearest' }), 0);
  return form;
}

async function deleteProfile(name) {
  if (!confirm(t('confirm.deleteProfile', { name }))) return;
  try {
    await api('DELETE', 'runner/profiles/' + encodeURIComponent(name));
    toast(() => t('runners.deleted'));
  } catch (e) {
    toast(e.fields && e.fields.length ? e.fields.map((f) => mtext(f.text, f.message) + (f.hint ? ' — ' + mtext(f.advice, f.hint) : '')).join('; ') : e.message, 'error');
  }
  renderRunners();
}

// ---------------------------------------------------------------------------------------------
// Doctor

async function loadDoctor() {
  try { state.doctor = await api('GET', 'doctor'); } catch (e) { state.doctor = null; }
}

async function renderDoctor() {
  const view = document.getElementById('view');
  fill(view, h('p', { class: 'muted', text: t('loading') }));
  await loadDoctor();
  if (state.view !== 'doctor') return;
  const d = state.doctor;
  if (!d) { fill(view, h('p', { class: 'error-text', text: t('error.network') })); return; }
  fill(view, 
    h('div', { class: 'page-head' }, h('h2', { class: 'page-title', text: t('doctor.title') }),
      h('button', { onclick: renderDoctor, text: t('action.recheck') })),
    h('section', { class: 'card' }, h('ul', { class: 'checks' }, d.checks.map((c) => h('li', { class: 'check ' + c.status },
      h('span', { class: 'badge ' + (c.status === 'ok' ? 'ok' : c.status === 'warn' ? 'warn' : 'bad'), text: t('doctor.' + c.status) }),
      h('div', {}, h('strong', { text: mtext(c.label, c.name) }), h('p', { text: mtext(c.text, c.detail) }), c.fix && c.status !== 'ok' ? h('p', { class: 'fix', text: '→ ' + mtext(c.advice, c.fix) }) : null))))));
}

// ---------------------------------------------------------------------------------------------
// Routing, language, start

const VIEWS = { overview: renderOverview, activity: renderActivity, builds: renderBuilds, logs: renderLogs, settings: renderSettings, runners: () => renderRunners(), doctor: renderDoctor };
initBuilds({ api, h, fill, toast });
VIEWS.maintenance = renderMaintenance; // maintenance.js: backups and upgrades
initMaintenance({ api, h, fill, toast, fmtBytes, follow: (op) => { state.op = op; state.opResult = null; refreshStatus(); refreshEvents(); } });

function go(view) {
  if (location.hash !== '#' + view) location.hash = view; else route();
}

function route() {
  const v = location.hash.replace(/^#/, '') || 'overview';
  state.view = VIEWS[v] ? v : 'overview';
  clearTimeout(logsState.timer);
  renderChrome();
  VIEWS[state.view]();
  if (state.view === 'overview' && state.status) refreshStatus(); // what was shown may be old
}

// rerender shows the page in the new language. Forms are translated in place (their labels
// carry data-i18n), so what the user typed and the errors shown stay.
function rerender() {
  applyI18n(document);
  document.documentElement.lang = getLang();
  document.getElementById('lang-select').value = getLang();
  renderChrome();
  if (typeof toast.text === 'function') document.getElementById('toast').textContent = toast.text();
  if (state.view !== 'settings' && state.view !== 'runners') VIEWS[state.view]();
}

async function main() {
  const params = new URLSearchParams(location.search);
  setLang(detectLang(document.documentElement.dataset.dsmLang, params.get('lang')));
  applyI18n(document);
  document.documentElement.lang = getLang();
  const sel = document.getElementById('lang-select');
  sel.value = getLang();
  sel.addEventListener('change', () => { setLang(sel.value, true); rerender(); });
  window.addEventListener('hashchange', route);
  try {
    state.session = await api('GET', 'session');
    const logout = document.getElementById('logout');
    logout.hidden = state.session.auth !== 'session';
    logout.addEventListener('click', async () => { await api('POST', 'logout'); location.reload(); });
  } catch (e) { /* shown by the status poll */ }
  route();
  schedule(refreshStatus, 1500, 5000, statusWanted);
  schedule(refreshEvents, 1000, 4000, eventsWanted);
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) return;
    if (statusWanted()) refreshStatus();
    if (eventsWanted()) refreshEvents();
  });
  loadDoctor().then(() => { if (state.view === 'overview') renderOverview(); });
}

main();
