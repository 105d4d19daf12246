// Shared pieces: htm binding, navigation, polling, and small components used by several views.
import { h } from '../vendor/preact.module.js';
import { useState, useEffect, useRef } from '../vendor/hooks.module.js';
import htm from '../vendor/htm.module.js';
import { api } from './api.js';
import { label, num, str, bytes, seconds } from './format.js';

export const html = htm.bind(h);

// --- navigation (History API); app.js listens for 'coldscan:navigate' and popstate.
export function navigate(url, { replace = false } = {}) {
  if (url === location.pathname + location.search) return;
  history[replace ? 'replaceState' : 'pushState'](null, '', url);
  dispatchEvent(new Event('coldscan:navigate'));
}

// An in-app link: plain <a href> (open in new tab works), normal clicks stay in the page.
export function Link({ href, children, ...rest }) {
  const onClick = (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${onClick} ...${rest}>${children}</a>`;
}

export const jobHref = (id) => `/jobs/${encodeURIComponent(id)}`;

// --- polling. load() runs now, then every `every` ms while the tab is visible (none: once). A transient
// failure (service down, 5xx) is retried with backoff 2, 4, 8, 10 s; other errors end the polling until
// deps change or refresh() is called. load may return false to stop polling (a finished job).
export function usePoll(load, every, deps = []) {
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    let timer = null, alive = true, busy = false, done = false, failures = 0;
    const schedule = (ms) => { if (alive) timer = setTimeout(run, ms); };
    async function run() {
      timer = null;
      if (!alive || done || busy) return;
      if (document.hidden) return; // resumed by visibilitychange
      busy = true;
      try {
        const more = await loadRef.current();
        failures = 0;
        if (!every || more === false) done = true; else schedule(every);
      } catch (e) {
        if (e && e.transient) schedule(Math.min(10000, 1000 * 2 ** ++failures));
        else done = true;
      } finally { busy = false; }
    }
    const onVisible = () => { if (!document.hidden && !timer) run(); };
    document.addEventListener('visibilitychange', onVisible);
    run();
    return () => { alive = false; clearTimeout(timer); document.removeEventListener('visibilitychange', onVisible); };
  }, [...deps, tick]);
  return () => setTick((t) => t + 1);
}

// GET url now and every `every` ms: {data, error, refresh}. data keeps the last good answer while the
// service is unreachable (the banner says so); error is the last non-transient error (or any, with local).
export function useResource(url, { every = 0, local = false, onData } = {}) {
  const [res, setRes] = useState({ data: null, error: null });
  const refresh = usePoll(async () => {
    try {
      const data = await api(url, { local });
      if (onData) onData(data);
      setRes({ data, error: null });
    } catch (e) {
      if (!e.transient || local) setRes((r) => ({ data: e.transient ? r.data : null, error: e }));
      throw e;
    }
  }, every, [url]);
  return { ...res, refresh };
}

// --- small components
// A path with break opportunities after each '/' (still plain text: <wbr> adds no characters).
export function Path({ v }) {
  // Short segments do not break inside (at a '-'); long ones may, anywhere.
  const seg = (s) => (s.length <= 40 ? html`<span class="seg">${s}</span>` : s);
  return str(v).split('/').map((p, i) => (i === 0 ? seg(p) : [html`<wbr />`, seg(`/${p}`)]));
}

const statusClass = {
  running: 'st-running', queued: 'st-queued', paused: 'st-paused', succeeded: 'st-ok', failed: 'st-bad',
  cancelled: 'st-muted', dead_letter: 'st-bad', infected: 'st-bad', clean: 'st-ok', scanned: 'st-ok',
  completed: 'st-ok', completed_with_warnings: 'st-warn', completed_with_issues: 'st-warn', skipped: 'st-muted',
  inconsistent: 'st-bad', DETECTION: 'st-bad', retro_hunt: 'st-bad', alive: 'st-ok', dead: 'st-bad',
};
export const Badge = ({ value, cls }) =>
  html`<span class=${`badge ${cls || statusClass[value] || 'st-warn'}`}>${str(value)}</span>`;

// A job's outcome in one badge: infected beats succeeded.
export function JobStatus({ job }) {
  const v = job.verdict;
  if (job.status === 'succeeded' && v && v.detections > 0) return html`<${Badge} value="infected" />`;
  if (job.status === 'succeeded' && v && v.not_fully_scanned > 0) return html`<${Badge} value="incomplete" cls="st-warn" />`;
  return html`<${Badge} value=${job.status} />`;
}

export const Panel = ({ title, actions, children, cls = '' }) => html`
  <section class=${`panel ${cls}`}>
    ${title && html`<header class="panel-head"><h2>${title}</h2>${actions}</header>`}
    ${children}
  </section>`;

export const ErrorText = ({ error }) =>
  error ? html`<p class="error-text" role="alert">${error.message || String(error)}</p>` : null;

export const Loading = () => html`<p class="muted">Loading…</p>`;

// A value by its key's name: *bytes*/*size* in bytes, *seconds* as a duration, other numbers grouped.
const auto = (k, v) => (typeof v !== 'number' ? str(v) : /bytes|size/.test(k) ? bytes(v) : /seconds/.test(k) ? seconds(v) : num(v));

// A definition list of an object's plain fields; fmt maps a key to a formatter.
export function KV({ obj, fmt = {}, skip = [] }) {
  if (!obj || typeof obj !== 'object') return null;
  const rows = Object.entries(obj).filter(([k, v]) => !skip.includes(k) && (v === null || typeof v !== 'object'));
  return html`<dl class="kv">${rows.map(([k, v]) => html`<dt>${label(k)}</dt><dd>${fmt[k] ? fmt[k](v) : auto(k, v)}</dd>`)}</dl>`;
}

// A definition list of [term, value] pairs; falsy entries are left out (optional fields).
export const Dl = ({ rows }) => html`<dl class="kv">${rows.filter(Boolean).map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`;

// <thead> from 'Name|#Count|...' ('#': a right-aligned number column).
export const Head = ({ cols }) => html`<thead><tr>${cols.split('|').map((c) =>
  (c[0] === '#' ? html`<th class="num">${c.slice(1)}</th>` : html`<th>${c}</th>`))}</tr></thead>`;

// Cancel with an in-page confirmation; onDone after the DELETE answered.
export function CancelButton({ job, onDone }) {
  const [asking, setAsking] = useState(false);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  if (!['queued', 'running', 'paused'].includes(job.status)) return null;
  const confirm = async () => {
    setBusy(true);
    try {
      await api(`/v1/scans/${encodeURIComponent(job.id)}`, { method: 'DELETE' });
      setAsking(false);
      setError(null);
      onDone && onDone();
    } catch (e) { setError(e); } finally { setBusy(false); }
  };
  return html`<span class="cancel">
    ${asking ? html`<span class="confirm">Cancel this scan?
        <button class="danger small" data-testid="confirm-cancel" disabled=${busy} onClick=${confirm}>Yes, cancel</button>
        <button class="small" onClick=${() => setAsking(false)}>No</button></span>`
      : html`<button class="small" data-testid="cancel" onClick=${() => setAsking(true)}>Cancel</button>`}
    ${error && html`<span class="error-text">${error.message}</span>`}
  </span>`;
}

// Horizontal bars of {key, count}; the width goes through the style prop (CSSOM, allowed by the CSP).
export function BarList({ items, onPick, testid }) {
  const max = Math.max(1, ...items.map((i) => i.count || 0));
  return html`<ol class="bars" data-testid=${testid}>${items.map((i) => html`
    <li class="bar-row" data-key=${i.key}>
      <span class="bar-label" title=${i.key}>${onPick ? html`<button class="link" onClick=${() => onPick(i.key)}>${str(i.key)}</button>` : str(i.key)}</span>
      <span class="bar-track"><span class="bar" style=${{ width: `${(100 * (i.count || 0)) / max}%` }}></span></span>
      <span class="num">${num(i.count)}</span>
    </li>`)}</ol>`;
}
