// `/jobs`: the queue. Filters live in the URL (?status=&priority=&host=&datastore=&image=) and go to the API
// as they are. Refreshes every 2 s.
import { useState, useEffect } from '../../vendor/hooks.module.js';
import { html, Link, Panel, ErrorText, Loading, JobStatus, CancelButton, Path, useResource, navigate, jobHref, Head } from '../components.js';
import { query } from '../api.js';
import { num, bytes, time, relative, str, seconds, rate } from '../format.js';
import { STATES, PRIORITIES } from './overview.js';

const FILTERS = ['status', 'priority', 'host', 'datastore', 'image'];
const PAGE = 100; // jobs a page

// Whatever numeric counters a running scan reports (files_done, bytes_done, seconds, ...).
export function Progress({ p, target }) {
  if (!p || typeof p !== 'object') return null;
  const parts = [];
  if (p.phase) parts.push(target ? String(p.phase).replace(`${target}:`, '') : String(p.phase));
  for (const [k, v] of Object.entries(p)) {
    if (typeof v !== 'number') continue;
    if (k === 'seconds') parts.push(seconds(v));
    else if (k.startsWith('bytes')) parts.push(bytes(v));
    else parts.push(`${num(v)} ${k.replace(/_done$/, '').replace(/_/g, ' ')}`);
  }
  if (p.bytes_done > 0 && p.seconds > 0) parts.push(rate(p.bytes_done / p.seconds));
  return html`<span class="progress">${parts.join(' · ')}</span>`;
}

export function Verdict({ v }) {
  if (!v || typeof v !== 'object') return html`<span class="muted">—</span>`;
  return html`<span class="verdict">
    <span class=${v.detections > 0 ? 'bad' : ''}>${num(v.detections)} det.</span>
    <span class="muted"> · ${num(v.files)} files · exit ${str(v.exit_status)}</span>
    ${v.not_fully_scanned > 0 && html`<span class="warn"> · ${num(v.not_fully_scanned)} not fully scanned</span>`}
  </span>`;
}

function Filters({ values, hosts, datastores }) {
  const [image, setImage] = useState(values.image || '');
  useEffect(() => setImage(values.image || ''), [values.image]);
  const apply = (patch) => navigate(`/jobs${query({ ...values, ...patch })}`);
  const select = (name, options) => html`<label>${name}
    <select name=${name} value=${values[name] || ''} onChange=${(e) => apply({ [name]: e.currentTarget.value })}>
      <option value="">any</option>
      ${options.map((o) => html`<option value=${o}>${o}</option>`)}
    </select></label>`;
  return html`<form class="filters" onSubmit=${(e) => { e.preventDefault(); apply({ image }); }}>
    ${select('status', STATES)} ${select('priority', PRIORITIES)} ${select('host', hosts)} ${select('datastore', datastores)}
    <label>image <input type="search" name="image" placeholder="path contains" value=${image}
      onInput=${(e) => setImage(e.currentTarget.value)} /></label>
    <button type="submit">Apply</button>
    ${FILTERS.some((f) => values[f]) && html`<button type="button" class="ghost" onClick=${() => navigate('/jobs')}>Clear</button>`}
  </form>`;
}

const uniq = (xs) => [...new Set(xs.filter((x) => typeof x === 'string' && x))].sort();

export function Jobs({ query: q }) {
  const values = Object.fromEntries(FILTERS.map((f) => [f, q.get(f) || '']));
  // The API filters and pages (newest first); the offset is in the URL like the filters.
  const offset = Math.max(0, parseInt(q.get('offset') || '0', 10) || 0);
  const res = useResource(`/v1/scans${query({ ...values, offset, limit: PAGE })}`, { every: 2000 });
  const go = (o) => navigate(`/jobs${query({ ...values, offset: o || '' })}`);
  const config = useResource('/v1/hosts');
  const jobs = (res.data && res.data.jobs) || [];
  const total = (res.data && res.data.total) ?? jobs.length;
  const hosts = uniq([...((config.data && config.data.hosts) || []).map((x) => x.name), values.host]);
  const datastores = uniq([...((config.data && config.data.datastores) || []).map((x) => x.name), values.datastore]);
  return html`
    <div class="view-head"><h1 data-testid="view-title">Jobs</h1>
      ${res.data && html`<span class="muted">${total > 0 ? `${num(offset + 1)}–${num(offset + jobs.length)} of ` : ''}${num(total)} jobs</span>
        <span class="pager">
          <button class="small" data-testid="jobs-prev" disabled=${offset === 0} onClick=${() => go(Math.max(0, offset - PAGE))}>← Prev</button>
          <button class="small" data-testid="jobs-next" disabled=${offset + PAGE >= total} onClick=${() => go(offset + PAGE)}>Next →</button>
        </span>`}</div>
    <${Filters} values=${values} hosts=${hosts} datastores=${datastores} />
    <${Panel}>
      <${ErrorText} error=${res.error} />
      ${!res.data ? !res.error && html`<${Loading} />` : html`<table class="grid">
        <${Head} cols="Job|Image|Status|Priority|Host / datastore|Submitted|Progress / verdict|" />
        <tbody>${jobs.map((j) => html`
          <tr key=${j.id} data-testid="job-row" data-id=${j.id} data-status=${j.status}>
            <td class="mono nowrap"><${Link} href=${jobHref(j.id)}>${str(j.id)}</${Link}></td>
            <td class="path"><${Path} v=${j.target} />${j.attempts > 0 && html`<span class="muted"> · attempt ${num(j.attempts + 1)}</span>`}
              ${j.last_error && html`<div class="error-text small">${j.last_error}</div>`}</td>
            <td><${JobStatus} job=${j} /></td>
            <td class="nowrap">${str(j.priority)}</td>
            <td class="nowrap">${str(j.host)}<span class="muted"> / ${str(j.datastore)}</span></td>
            <td class="nowrap" title=${time(j.submitted_at)}>${relative(j.submitted_at)}</td>
            <td>${j.status === 'running' || j.progress ? html`<${Progress} p=${j.progress} target=${j.target} />` : html`<${Verdict} v=${j.verdict} />`}</td>
            <td><${CancelButton} job=${j} onDone=${res.refresh} /></td>
          </tr>`)}
          ${jobs.length === 0 && html`<tr><td colspan="8" class="muted">No jobs match.</td></tr>`}
        </tbody></table>`}
    </${Panel}>`;
}
