// Backups and upgrades page: the backups in the backup folder with the schedule, "back up now",
// a restore that asks for the backup's name, and GitLab's upgrade along its required stops with
// the plan shown before anything starts. Each change is an operation of the controller; its
// progress is followed here from the activity feed. Data from api/v1/backups and api/v1/upgrade;
// text from i18n.js (maintenance-i18n.js); API data only ever goes into the page as text.
import { t, getLang } from './i18n.js';
import './maintenance-i18n.js';
import { mtext, etext } from './messages-i18n.js';

// Helpers from app.js, handed over by initMaintenance.
let api, h, fill, toast, follow, fmtBytes;

export function initMaintenance(helpers) {
  ({ api, h, fill, toast, follow, fmtBytes } = helpers);
}

const ms = {
  backups: null,   // GET backups
  upgrade: null,   // GET upgrade
  bundles: null,   // GET bundles: offline bundles placed in the share
  error: null,
  restoring: null, // the backup whose restore form is open
  restoreText: '',  // what was typed there
  restoreError: '',
  target: '',
  pgImage: '',
  op: null,        // the operation this page started or found running
  events: [],
  cursor: 0,
  timer: null,
};

const onPage = () => !!document.getElementById('maint-page');

function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? '' : d.toLocaleString(getLang(), { hour12: false });
}

export async function renderMaintenance() {
  const view = document.getElementById('view');
  if (!onPage()) fill(view, h('div', { id: 'maint-page' }, h('p', { class: 'muted', text: t('loading') })));
  await load();
  draw();
  poll();
}

async function load() {
  ms.error = null;
  try {
    ms.backups = await api('GET', 'backups');
  } catch (e) {
    ms.error = e.message;
  }
  try {
    const q = new URLSearchParams();
    if (ms.target) q.set('to', ms.target);
    if (ms.pgImage) q.set('postgres_image', ms.pgImage);
    ms.upgrade = await api('GET', 'upgrade' + (q.toString() ? '?' + q : ''));
  } catch (e) {
    ms.upgrade = { error: e.message };
  }
  try {
    ms.bundles = await api('GET', 'bundles');
  } catch (e) {
    ms.bundles = { error: e.message };
  }
  try {
    const ops = await api('GET', 'operations');
    const r = ops.running;
    if (r && ['backup', 'backup (scheduled)', 'restore', 'upgrade', 'bundle load'].includes(r.op) && (!ms.op || ms.op.id !== r.id)) watch(r);
  } catch (e) { /* the status poll shows it */ }
}

function watch(op) {
  ms.op = op;
  ms.events = [];
  ms.cursor = op.first_event || 0;
}

function draw() {
  const page = document.getElementById('maint-page');
  if (!page) return;
  fill(page,
    h('div', { class: 'page-head' }, h('h2', { class: 'page-title', text: t('nav.maintenance') })),
    ms.error ? h('div', { class: 'error-box', text: ms.error }) : null,
    progressCard(),
    backupsCard(),
    bundlesCard(),
    upgradeCard());
}

// ---------------------------------------------------------------------------------------------
// Backups

function backupsCard() {
  const b = ms.backups;
  if (!b) return null;
  const busy = !!(ms.op && !ms.op.finished_at);
  const sched = b.schedule
    ? t('mt.schedule', { time: b.schedule, next: b.next_scheduled ? when(b.next_scheduled) : '–', keep: b.keep })
    : t('mt.noSchedule');
  const rows = b.backups.map((e) => {
    const m = e.manifest;
    const row = h('tr', { 'data-backup': e.name },
      h('td', {}, h('code', { text: e.name })),
      h('td', { text: m ? t('mt.kind.' + m.kind, null, m.kind) : '' }),
      h('td', { text: m ? m.gitlab.version : '' }),
      h('td', { text: fmtBytes(e.size) }),
      h('td', { text: m ? when(m.created_at) : t('mt.unreadable', { problem: e.problem || '' }) }),
      h('td', {}, m ? h('button', { class: 'small', disabled: busy, 'data-restore': e.name, onclick: () => { closeRestore(); ms.restoring = e.name; draw(); }, text: t('mt.restore') }) : null));
    return row;
  });
  return h('section', { class: 'card', id: 'backups-card' },
    h('div', { class: 'progress-head' },
      h('h3', { text: t('mt.backups') }),
      h('button', { class: 'primary', id: 'btn-backup', disabled: busy, onclick: backupNow, text: t('mt.backupNow') })),
    h('p', { class: 'muted', text: t('mt.backupIntro') }),
    h('p', { id: 'backup-schedule', text: sched }),
    h('p', { class: 'muted small', text: t('mt.dir', { dir: b.dir }) }),
    b.backups.length === 0 ? h('p', { class: 'muted', text: t('mt.none') }) :
      h('table', { class: 'backups' },
        h('thead', {}, h('tr', {}, ['name', 'kind', 'gitlab', 'size', 'created'].map((c) => h('th', { text: t('mt.col.' + c) })), h('th', {}))),
        h('tbody', {}, rows)),
    restoreForm());
}

// ---------------------------------------------------------------------------------------------
// Offline bundles (`forgebox bundle save` on a machine with internet, the file copied into the
// share): verified blob by blob, then loaded into the engine; a damaged one loads nothing.

function bundlesCard() {
  const b = ms.bundles;
  if (!b) return null;
  if (b.error) return h('section', { class: 'card', id: 'bundles-card' }, h('h3', { text: t('mt.bundles') }), h('p', { class: 'error-text', text: b.error }));
  const busy = !!(ms.op && !ms.op.finished_at);
  return h('section', { class: 'card', id: 'bundles-card' },
    h('h3', { text: t('mt.bundles') }),
    h('p', { class: 'muted', text: t('mt.bundlesIntro') }),
    h('p', { class: 'muted small', text: t('mt.bundlesDir', { dir: b.dir }) }),
    b.bundles.length === 0 ? h('p', { class: 'muted', id: 'bundles-none', text: t('mt.bundlesNone') }) :
      h('table', { class: 'backups' },
        h('thead', {}, h('tr', {}, ['file', 'size', 'modified'].map((c) => h('th', { text: t('mt.bcol.' + c) })), h('th', {}))),
        h('tbody', {}, b.bundles.map((e) => h('tr', { 'data-bundle': e.name },
          h('td', {}, h('code', { text: e.name })),
          h('td', { text: fmtBytes(e.size) }),
          h('td', { text: when(e.modified) }),
          h('td', {}, h('button', { class: 'small', disabled: busy, 'data-load': e.name, onclick: () => loadBundle(e.name), text: t('mt.bundleLoad') })))))));
}

async function loadBundle(name) {
  try {
    const r = await api('POST', 'bundles/load', { name });
    started(r.operation);
  } catch (e) {
    toast(e.message, 'error');
  }
}

async function backupNow() {
  try {
    const r = await api('POST', 'backups');
    started(r.operation);
  } catch (e) {
    toast(e.message, 'error');
  }
}

function restoreForm() {
  const name = ms.restoring;
  if (!name || !ms.backups) return null;
  const e = ms.backups.backups.find((x) => x.name === name);
  if (!e || !e.manifest) return null;
  const input = h('input', { type: 'text', id: 'restore-confirm', autocomplete: 'off', spellcheck: 'false', value: ms.restoreText });
  const go = h('button', { class: 'primary danger', id: 'btn-restore', disabled: ms.restoreText.trim() !== name, text: t('mt.restoreGo') });
  const errText = (ex) => (ex ? mtext(ex.text, ex.message) : '');
  const err = h('div', { class: 'form-errors', role: 'alert', hidden: !ms.restoreError, text: errText(ms.restoreError) });
  input.addEventListener('input', () => { ms.restoreText = input.value; go.disabled = input.value.trim() !== name; });
  go.addEventListener('click', async () => {
    go.disabled = true;
    try {
      const r = await api('POST', 'backups/' + encodeURIComponent(name) + '/restore', { confirm: input.value.trim() });
      closeRestore();
      started(r.operation);
    } catch (ex) {
      ms.restoreError = ex;
      err.textContent = errText(ex);
      err.hidden = false;
      go.disabled = false;
    }
  });
  return h('div', { class: 'restore-form card', id: 'restore-form' },
    h('h3', { text: t('mt.restoreTitle', { name }) }),
    h('p', { text: t('mt.restoreWarn', { version: e.manifest.gitlab.version, time: when(e.manifest.created_at) }) }),
    h('p', { class: 'muted', text: t('mt.restoreVersion', { version: e.manifest.gitlab.version }) }),
    h('div', { class: 'field' }, h('label', { for: 'restore-confirm', text: t('mt.restoreType') }), input),
    err,
    h('div', { class: 'form-actions' }, go, h('button', { onclick: () => { closeRestore(); draw(); }, text: t('mt.cancel') })));
}

function closeRestore() {
  ms.restoring = null;
  ms.restoreText = '';
  ms.restoreError = '';
}

// ---------------------------------------------------------------------------------------------
// Upgrade

function upgradeCard() {
  const u = ms.upgrade;
  if (!u) return null;
  const busy = !!(ms.op && !ms.op.finished_at);
  const parts = [h('div', { class: 'progress-head' }, h('h3', { text: t('mt.upgrade') })),
    h('p', { class: 'muted', text: t('mt.upgradeIntro') })];
  if (u.error) {
    parts.push(h('div', { class: 'error-box', text: u.error }));
    return h('section', { class: 'card', id: 'upgrade-card' }, parts);
  }
  if (u.running) {
    parts.push(h('p', {}, h('strong', { id: 'gitlab-running', text: t('mt.running', { version: u.running }) }), ' ',
      h('span', { class: 'muted small', text: t('mt.runningFrom', { source: u.source }) })));
  }
  parts.push(h('p', { class: 'muted', text: t('mt.latest', { version: u.latest }) }));
  const plan = u.plan;
  if (plan && plan.in_progress) {
    const s = plan.in_progress;
    const cur = s.hops[Math.min(s.current, s.hops.length - 1)];
    parts.push(h('div', { class: 'note', id: 'upgrade-in-progress', text: t('mt.inProgress', { target: s.target, hop: s.current + 1, n: s.hops.length, version: cur.version, step: s.step || t('mt.none.step') }) }),
      h('div', { class: 'form-actions' }, h('button', { class: 'primary', id: 'btn-resume', disabled: busy, onclick: () => startUpgrade(plan, true), text: t('mt.resume') })));
    return h('section', { class: 'card', id: 'upgrade-card' }, parts);
  }
  if (u.up_to_date && !ms.target) {
    parts.push(h('p', { class: 'ok-text', id: 'upgrade-state', text: t('mt.upToDate') }));
  }
  // Target: the stops after the running version, and the newest.
  const options = (u.stops || []).filter((v) => !u.running || cmp(v, u.running) > 0);
  if (!options.includes(u.latest) && (!u.running || cmp(u.latest, u.running) > 0)) options.push(u.latest);
  const target = h('input', { type: 'text', id: 'upgrade-target', list: 'upgrade-targets', value: ms.target || (plan ? plan.to : u.latest), spellcheck: 'false' });
  const pg = h('input', { type: 'text', id: 'upgrade-pg', value: ms.pgImage, spellcheck: 'false' });
  parts.push(h('div', { class: 'fields' },
    h('div', { class: 'field' }, h('label', { for: 'upgrade-target', text: t('mt.target') }), target,
      h('datalist', { id: 'upgrade-targets' }, options.map((v) => h('option', { value: v })))),
    h('div', { class: 'field' }, h('label', { for: 'upgrade-pg', text: t('mt.pgImage') }), pg, h('p', { class: 'help', text: t('mt.pgImageHelp') }))),
  h('div', { class: 'form-actions' }, h('button', { id: 'btn-plan', onclick: async () => {
    ms.target = target.value.trim();
    ms.pgImage = pg.value.trim();
    await load();
    draw();
  }, text: t('mt.showPlan') })));
  if (u.problem) parts.push(h('div', { class: 'error-box', id: 'upgrade-problem', text: t('mt.problem', { message: mtext(u.problem_text, u.problem) }) }));
  if (plan) {
    parts.push(h('h4', { id: 'upgrade-plan-title', text: t(plan.hops.length === 1 ? 'mt.plan.one' : 'mt.plan', { from: plan.from, to: plan.to, n: plan.hops.length }) }),
      h('ol', { class: 'steps', id: 'upgrade-plan' }, plan.hops.map((hp, i) => h('li', {},
        h('strong', { text: 'GitLab ' + hp.version }), ' ',
        h('span', { class: 'muted', text: '(' + (hp.stop ? t('mt.hop.stop') : '') + (hp.stop && i === plan.hops.length - 1 ? ', ' : '') + (i === plan.hops.length - 1 ? t('mt.hop.target') : '') + ')' }),
        hp.postgres ? h('div', { class: 'small', text: t('mt.hop.postgres', { from: hp.postgres.from, to: hp.postgres.to, image: hp.postgres.image }) }) : null,
        h('div', { class: 'small muted' }, h('code', { text: t('mt.hop.images', { gitlab: hp.gitlab_image, runner: hp.runner_image }) }))))));
    if (plan.notes && plan.notes.length) {
      parts.push(h('h4', { text: t('mt.notes') }), h('ul', { class: 'small' }, plan.notes.map((n) => h('li', { text: n }))));
    }
    parts.push(h('div', { class: 'form-actions' }, h('button', { class: 'primary', id: 'btn-upgrade', disabled: busy, onclick: () => startUpgrade(plan, false), text: t('mt.start') })));
  }
  return h('section', { class: 'card', id: 'upgrade-card' }, parts);
}

function cmp(a, b) {
  const pa = a.split('.').map(Number), pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i];
  return 0;
}

async function startUpgrade(plan, resume) {
  if (!resume && !confirm(t('mt.confirmUpgrade', { from: plan.from, to: plan.to, n: plan.hops.length }))) return;
  try {
    const body = resume ? { confirm: true } : { to: plan.to, postgres_image: ms.pgImage, confirm: true };
    const r = await api('POST', 'upgrade', body);
    started(r.operation);
  } catch (e) {
    toast(e.message, 'error');
  }
}

// ---------------------------------------------------------------------------------------------
// Progress of the operation started here (or found running)

function started(op) {
  toast(() => t('mt.started'));
  watch(op);
  if (follow) follow(op);
  draw();
  poll();
}

function progressCard() {
  const op = ms.op;
  if (!op) return null;
  const failed = op.state === 'failed';
  const done = op.state === 'succeeded';
  const lines = ms.events.filter((e) => e.kind !== 'pull' && e.kind !== 'plan').slice(-14);
  return h('section', { class: 'card progress-card', id: 'maint-progress' },
    h('div', { class: 'progress-head' },
      h('h3', { text: t('mt.progress') + ': ' + t('op.' + op.op, null, op.op) }),
      h('span', { class: 'badge ' + (failed ? 'bad' : done ? 'ok' : 'warn'), id: 'maint-op-state', 'data-state': op.state,
        text: failed ? t('progress.failed') : done ? t('progress.done') : t('progress.running') })),
    h('ul', { class: 'events small' }, lines.map((e) => h('li', { class: 'kind-' + e.kind }, etext(e)))),
    failed && op.error ? h('div', { class: 'error-box', text: mtext(op.error_text, op.error) }) : null);
}

function poll() {
  clearTimeout(ms.timer);
  if (!onPage() || !ms.op || ms.op.finished_at) return;
  ms.timer = setTimeout(async () => {
    if (!onPage()) return;
    try {
      for (let i = 0; i < 5; i++) {
        const page = await api('GET', 'events?after=' + ms.cursor + '&limit=500');
        ms.events.push(...page.events.filter((e) => e.op === ms.op.op || e.op === undefined || e.op === ''));
        if (ms.events.length > 500) ms.events.splice(0, ms.events.length - 500);
        ms.cursor = page.cursor;
        if (!page.more) break;
      }
      const r = await api('GET', 'operations/' + ms.op.id);
      ms.op = r.operation;
      if (ms.op.finished_at) await load();
    } catch (e) { /* the next round tries again */ }
    draw();
    poll();
  }, 1500);
}
