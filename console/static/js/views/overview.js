// `/`: the fleet at a glance. Hosts, datastores, nodes, jobs by state, latest findings, signature set, and
// the "scan an image" form. Hosts, health and nodes refresh every 2 s.
import { useState, useRef } from '../../vendor/hooks.module.js';
import { html, Link, Panel, ErrorText, Loading, Badge, Path, useResource, navigate, jobHref, Head } from '../components.js';
import { api } from '../api.js';
import { num, rate, percent, time, relative, short, str, seconds } from '../format.js';

export const STATES = ['queued', 'running', 'paused', 'succeeded', 'failed', 'cancelled', 'dead_letter'];
export const PRIORITIES = ['gate', 'on-demand', 'nightly'];

// Read rates: the delta of the cumulative bytes_read between two polls, per host and datastore.
function useRates() {
  const prev = useRef(null);
  const [rates, setRates] = useState({});
  const onData = (d) => {
    const now = performance.now(), cur = {};
    for (const x of d.hosts || []) cur[`h:${x.name}`] = x.bytes_read;
    for (const x of d.datastores || []) cur[`d:${x.name}`] = x.bytes_read;
    const p = prev.current, next = {};
    if (p && now > p.at) {
      for (const [k, v] of Object.entries(cur)) {
        if (typeof v === 'number' && typeof p.bytes[k] === 'number') next[k] = Math.max(0, (v - p.bytes[k]) / ((now - p.at) / 1000));
      }
    }
    prev.current = { at: now, bytes: cur };
    setRates(next);
  };
  return [rates, onData];
}

function Load({ running, max }) {
  const full = typeof max === 'number' && max > 0 && running >= max;
  return html`<span class=${full ? 'at-cap' : ''}>${num(running)} / ${max ? num(max) : '∞'}</span>`;
}

function Hosts({ data, error, rates }) {
  if (!data) return error ? html`<${ErrorText} error=${error} />` : html`<${Loading} />`;
  const hosts = data.hosts || [], stores = data.datastores || [];
  return html`
    <table class="grid">
      <${Head} cols="Host|#Scans|#Queued|#Read rate|#Read cap|#Pressure|Throttled" />
      <tbody>${hosts.map((x) => html`
        <tr data-testid="host-row" data-name=${x.name}>
          <td>${str(x.name)}</td>
          <td class="num"><${Load} running=${x.running} max=${x.max_concurrent_scans} /></td>
          <td class="num">${num(x.queued)}</td>
          <td class="num">${rate(rates[`h:${x.name}`])}</td>
          <td class="num">${x.max_read_per_second ? rate(x.max_read_per_second) : 'none'}</td>
          <td class="num" title=${x.probe_error || ''}>
            <span class=${x.pressure > x.pressure_threshold ? 'at-cap' : ''}>${x.probe_error ? 'probe failed' : percent(x.pressure)}</span>
            <span class="muted"> / ${percent(x.pressure_threshold)}</span></td>
          <td>${x.throttled ? html`<${Badge} value="throttled" cls="st-warn" />` : 'no'}
            ${x.throttled_seconds > 0 && html`<span class="muted"> ${seconds(x.throttled_seconds)} total</span>`}</td>
        </tr>`)}
        ${hosts.length === 0 && html`<tr><td colspan="7" class="muted">No hosts configured.</td></tr>`}
      </tbody>
    </table>
    <h3>Datastores</h3>
    <table class="grid">
      <${Head} cols="Datastore|Hosts|#Scans|#Read rate|#Read cap|Roots" />
      <tbody>${stores.map((x) => html`
        <tr data-testid="datastore-row" data-name=${x.name}>
          <td>${str(x.name)}</td><td>${(x.hosts || []).join(', ')}</td>
          <td class="num"><${Load} running=${x.running} max=${x.max_concurrent_scans} /></td>
          <td class="num">${rate(rates[`d:${x.name}`])}</td>
          <td class="num">${x.max_read_per_second ? rate(x.max_read_per_second) : 'none'}</td>
          <td class="path">${(x.roots || []).join(', ')}</td>
        </tr>`)}
        ${stores.length === 0 && html`<tr><td colspan="6" class="muted">No datastores configured.</td></tr>`}
      </tbody>
    </table>`;
}

function Nodes({ data, error }) {
  if (error) return html`<${ErrorText} error=${error} />`;
  if (!data) return html`<${Loading} />`;
  return html`<table class="grid">
    <${Head} cols="Node|State|Heartbeat|#Running|Version|Signatures" />
    <tbody>${(data.nodes || []).map((n) => html`
      <tr data-testid="node-row" data-name=${n.name}>
        <td>${str(n.name)}</td><td><${Badge} value=${n.alive ? 'alive' : 'dead'} /></td>
        <td title=${time(n.heartbeat)}>${relative(n.heartbeat)}</td><td class="num">${num(n.running_jobs)}</td>
        <td>${str(n.version)}</td><td class="mono" title=${n.signature_set || ''}>${short(n.signature_set)}</td>
      </tr>`)}</tbody></table>`;
}

function JobsByState({ health }) {
  const jobs = (health && health.jobs) || {};
  return html`<div class="states" data-testid="jobs-by-state">${STATES.map((s) => html`
    <${Link} href=${`/jobs?status=${s}`} class=${`state st-${s}`} title=${`${s} jobs`}>
      <span class="state-n" data-testid="state-count" data-state=${s}>${typeof jobs[s] === 'number' ? jobs[s] : '—'}</span><span class="state-name">${s.replace('_', ' ')}</span>
    </${Link}>`)}</div>`;
}

function ScanForm() {
  const [target, setTarget] = useState('');
  const [priority, setPriority] = useState('on-demand');
  const [fresh, setFresh] = useState(false); // scan again even if this image and set were scanned before
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    if (!target.trim()) return setError(new Error('Enter the absolute path of a disk image.'));
    setBusy(true);
    setError(null);
    try {
      const body = { targets: [target.trim()], priority, ...(fresh ? { max_age_seconds: 0 } : {}) };
      const res = await api('/v1/scans', { method: 'POST', body });
      const job = (res.jobs || [])[0];
      navigate(job ? jobHref(job.id) : '/jobs');
    } catch (err) { setError(err); } finally { setBusy(false); }
  };
  return html`<form class="scan-form" onSubmit=${submit}>
    <input type="text" name="target" data-testid="scan-target" placeholder="/datastore/vm/disk.qcow2" spellcheck="false"
      value=${target} onInput=${(e) => setTarget(e.currentTarget.value)} />
    <select name="priority" data-testid="scan-priority" value=${priority} onChange=${(e) => setPriority(e.currentTarget.value)}>
      ${PRIORITIES.map((p) => html`<option value=${p}>${p}</option>`)}
    </select>
    <label class="check" title="Without it, an image scanned before with this signature set answers with that scan">
      <input type="checkbox" data-testid="scan-fresh" checked=${fresh} onChange=${(e) => setFresh(e.currentTarget.checked)} />
      scan again</label>
    <button type="submit" class="primary" data-testid="scan-submit" disabled=${busy}>${busy ? 'Submitting…' : 'Scan'}</button>
    <${ErrorText} error=${error} />
  </form>`;
}

function LatestFindings({ data, error }) {
  if (!data) return error ? html`<${ErrorText} error=${error} />` : html`<${Loading} />`;
  const rows = data.findings || [];
  if (rows.length === 0) return html`<p class="muted">No findings.</p>`;
  return html`<table class="grid">
    <${Head} cols="When|Kind|Signature / reason|Image|Path" />
    <tbody>${rows.map((f) => html`<tr data-testid="latest-finding">
      <td class="nowrap" title=${time(f.at)}>${relative(f.at)}</td><td><${Badge} value=${f.kind} /></td><td>${str(f.signature)}</td>
      <td class="path">${f.job ? html`<${Link} href=${jobHref(f.job)}><${Path} v=${f.image} /></${Link}>` : html`<${Path} v=${f.image} />`}</td>
      <td class="path"><${Path} v=${f.path} /></td></tr>`)}</tbody></table>`;
}

export function Overview() {
  const [rates, onData] = useRates();
  const hosts = useResource('/v1/hosts', { every: 2000, onData });
  const health = useResource('/v1/healthz', { every: 2000 });
  const nodes = useResource('/v1/nodes', { every: 2000, local: true });
  const findings = useResource('/v1/findings?limit=10', { every: 2000 });
  const h = health.data;
  return html`
    <div class="view-head"><h1 data-testid="view-title">Overview</h1>
      ${h && html`<span class="muted">${h.accepting === false ? 'not accepting scans' : 'accepting scans'}${h.damaged_job_records > 0 ? ` · ${h.damaged_job_records} damaged job records` : ''}</span>`}</div>
    <${Panel} title="Scan an image"><${ScanForm} /></${Panel}>
    <div class="cols">
      <${Panel} title="Jobs by state"><${JobsByState} health=${h} /><${ErrorText} error=${health.error} /></${Panel}>
      <${Panel} title="Signature set" actions=${html`<${Link} href="/signatures">details</${Link}>`}>${h ? html`<dl class="kv">
        <dt>fingerprint</dt><dd class="mono big" data-testid="overview-signature-set" title=${h.signature_set || ''}>${short(h.signature_set)}</dd>
        <dt>loaded</dt><dd>${time(h.signatures_loaded_at)} <span class="muted">${relative(h.signatures_loaded_at)}</span></dd>
        </dl>` : html`<${Loading} />`}</${Panel}>
    </div>
    <${Panel} title="Hosts"><${Hosts} ...${hosts} rates=${rates} /></${Panel}>
    <${Panel} title="Nodes"><${Nodes} ...${nodes} /></${Panel}>
    <${Panel} title="Latest findings" actions=${html`<${Link} href="/findings">all findings</${Link}>`}><${LatestFindings} ...${findings} /></${Panel}>`;
}
