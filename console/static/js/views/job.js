// `/jobs/ID`: one job, polled every 2 s until it ends, then its report (targets, filesystems and readers,
// detections, every file not called clean and why, timings, cache reuse).
import { useState } from '../../vendor/hooks.module.js';
import { html, Link, Panel, ErrorText, Loading, Badge, JobStatus, CancelButton, KV, Dl, Head, Path, usePoll } from '../components.js';
import { api } from '../api.js';
import { num, bytes, time, relative, str, seconds, short } from '../format.js';
import { Progress, Verdict } from './jobs.js';

const LIVE = ['queued', 'running', 'paused'];
const list = (x) => (Array.isArray(x) ? x : []);
const None = ({ text }) => html`<p class="muted">${text}</p>`;
const When = ({ iso }) => html`${time(iso)} <span class="muted">${relative(iso)}</span>`;

function Filesystems({ fs }) {
  if (!fs.length) return html`<${None} text="No filesystems." />`;
  return html`<table class="grid"><${Head} cols="Device|Type|Label|Status|Reader|#Files|#Bytes|#Open|#Scan|Reason" />
    <tbody>${fs.map((f) => html`<tr data-testid="filesystem-row">
      <td class="mono">${str(f.device)}</td><td>${str(f.type)}</td><td>${str(f.label)}</td><td><${Badge} value=${f.status} /></td>
      <td>${str(f.reader)}</td><td class="num">${num(f.files)}</td><td class="num">${bytes(f.bytes)}</td>
      <td class="num">${seconds(f.timings && f.timings.open_seconds)}</td><td class="num">${seconds(f.timings && f.timings.scan_seconds)}</td>
      <td>${f.reason || ''}</td></tr>`)}</tbody></table>`;
}

function Target({ t, alone }) {
  const os = list(t.inspection).map((i) => [i.product_name || i.distro || i.type, i.hostname && `host ${i.hostname}`, i.root].filter(Boolean).join(', '));
  const paths = (xs) => list(xs).map((d) => `${d.path}${d.format ? ` (${d.format})` : ''}`).join(' → ');
  return html`<div class="target">
    <h3 class="path">${str(t.path)} <${Badge} value=${t.status} /></h3>
    ${t.error && html`<p class="error-text">${t.error}</p>`}
    <${Dl} rows=${[['kind', `${str(t.kind)}${t.format ? ` · ${t.format}` : ''}`], ['virtual size', bytes(t.virtual_size)],
      t.accel && ['appliance', t.accel], os.length && ['operating system', os.join('; ')],
      list(t.backing_chain).length && ['backing chain', paths(t.backing_chain)], list(t.disks).length && ['disks', paths(t.disks)]]} />
    <${Filesystems} fs=${list(t.filesystems)} />
    <div class="cols">${!alone && html`<div><h4>Counts</h4><${KV} obj=${t.counts} /></div>`}<div><h4>Timings</h4><${KV} obj=${t.timings} /></div></div>
  </div>`;
}

// Detections of the scan, or found later by a retro-hunt (retro: found_at instead of the engine).
function Detections({ rows, retro = false }) {
  return html`<table class="grid"><${Head} cols=${`Path|Device|Signature|${retro ? 'Found' : 'Engine'}|#Size|SHA-256`} />
    <tbody>${rows.map((d) => html`<tr data-testid=${retro ? 'retro-detection-row' : 'detection-row'}>
      <td class="path"><${Path} v=${d.path} /></td><td class="mono">${str(d.device)}</td><td class="bad">${str(d.signature)}</td>
      <td>${retro ? html`<span title=${time(d.found_at)}>${relative(d.found_at)}</span>` : str(d.engine)}</td>
      <td class="num">${bytes(d.size)}</td><td class="mono" title=${d.sha256 || ''}>${short(d.sha256, 16)}</td></tr>`)}
    </tbody></table>`;
}

function Issues({ rows }) {
  return html`<table class="grid"><${Head} cols="Outcome|Path|Device|Reason" />
    <tbody>${rows.map((e) => html`<tr data-testid="issue-row">
      <td><${Badge} value=${e.outcome} cls="st-warn" /></td><td class="path"><${Path} v=${e.path || e.target} /></td>
      <td class="mono">${str(e.device)}</td><td>${str(e.reason)}</td></tr>`)}</tbody></table>`;
}

// What the verdict cache saved, then every counter it reports.
function Cache({ c, files }) {
  if (!c) return html`<${None} text="none" />`;
  const pair = (n, b) => `${num(n)} files${typeof b === 'number' ? ` (${bytes(b)})` : ''}`;
  return html`<${Dl} rows=${[['scanned by the engines', `${num(c.engine_scans)} of ${num(files)} files`],
      ['verdict reused', pair(c.files_not_scanned, c.bytes_not_scanned)], ['not even read', pair(c.files_not_read, c.bytes_not_read)],
      ['unchanged blocks', pair(c.files_reused_by_blocks, c.bytes_reused_by_blocks)],
      c.enabled === false && ['cache', 'not used'], c.problem && ['problem', c.problem]]} />
    <details><summary class="muted">all counters</summary><${KV} obj=${c} skip=${['detection_set']} /></details>`;
}

function Report({ r }) {
  const dets = list(r.detections), retro = list(r.retro_hunt), issues = list(r.errors), targets = list(r.targets);
  const sig = r.signatures || {};
  const engines = ['clamav', 'yara'].filter((e) => sig[e]).map((e) => `${e} ${sig[e].engine_version || ''}`);
  return html`
    <${Panel} title="Report">
      <${Dl} rows=${[['status', html`<${Badge} value=${r.status} />`], ['started', time(r.started_at)], ['finished', time(r.finished_at)],
        ['signature set', html`<span class="mono" title=${sig.fingerprint || ''}>${short(sig.fingerprint)}</span> <span class="muted">${engines.join(', ')}</span>`],
        r.tool && ['tool', `${str(r.tool.name)} ${str(r.tool.version)}`]]} />
      <div class="cols"><div><h4>Counts</h4><${KV} obj=${r.counts} /></div><div><h4>Timings</h4><${KV} obj=${r.timings} /></div>
        <div><h4>Cache reuse</h4><${Cache} c=${r.cache} files=${r.counts && r.counts.files} /></div></div>
    </${Panel}>
    <${Panel} title=${`Detections (${dets.length})`}>${dets.length ? html`<${Detections} rows=${dets} />` : html`<${None} text="Nothing detected." />`}</${Panel}>
    ${retro.length > 0 && html`<${Panel} title=${`Found later by retro-hunt (${retro.length})`}><${Detections} rows=${retro} retro /></${Panel}>`}
    <${Panel} title=${`Not called clean (${issues.length})`}>${issues.length ? html`<${Issues} rows=${issues} />` : html`<${None} text="Every file was scanned in full." />`}</${Panel}>
    <${Panel} title=${`Targets (${targets.length})`}>${targets.map((t) => html`<${Target} t=${t} alone=${targets.length === 1} />`)}</${Panel}>`;
}

export function Job({ id }) {
  const [job, setJob] = useState(null);
  const [report, setReport] = useState(null); // {data} | {error}
  const [error, setError] = useState(null);
  const path = `/v1/scans/${encodeURIComponent(id)}`;
  const refresh = usePoll(async () => {
    let j;
    try { j = await api(path); } catch (e) { if (!e.transient) setError(e); throw e; }
    setJob(j);
    setError(null);
    if (LIVE.includes(j.status)) return true;
    try { setReport({ data: await api(`${path}/report`) }); } catch (e) {
      if (e.transient) throw e;
      setReport({ error: e });
    }
    return false; // finished: nothing changes any more
  }, 2000, [id]);
  if (!job) return html`<h1 data-testid="view-title">Job <span class="mono">${id}</span></h1>${error ? html`<${ErrorText} error=${error} />` : html`<${Loading} />`}`;
  const j = job;
  return html`
    <div class="view-head"><h1 data-testid="view-title">Job <span class="mono">${str(j.id)}</span></h1>
      <${JobStatus} job=${j} /><span class="spacer"></span><${CancelButton} job=${j} onDone=${refresh} /></div>
    <${Panel}><div data-testid="job-detail" data-status=${j.status} data-id=${j.id}>
      <p class="path big">${str(j.target)}</p>
      ${j.last_error && html`<p class="error-text">${j.last_error}</p>`}
      ${j.progress && html`<p><strong>Progress: </strong><${Progress} p=${j.progress} target=${j.target} /></p>`}
      <${Dl} rows=${[['status', `${str(j.status)}${j.attempts > 0 ? ` (attempt ${j.attempts + 1})` : ''}`], ['verdict', html`<${Verdict} v=${j.verdict} />`],
        ['priority', str(j.priority)], ['host / datastore', `${str(j.host)} / ${str(j.datastore)}`], ['node', str(j.node)],
        ['submitted', html`<${When} iso=${j.submitted_at} />`], ['updated', html`<${When} iso=${j.updated_at} />`],
        j.requested_by && ['requested by', j.requested_by], j.snapshot && ['snapshot', j.snapshot], j.format && ['format', j.format],
        list(j.disks).length && ['disks', list(j.disks).map((d) => d.path).join(', ')],
        ['signature set', html`<span class="mono" title=${j.signature_set || ''}>${short(j.signature_set)}</span>`]]} />
    </div></${Panel}>
    ${LIVE.includes(j.status) ? html`<${None} text="The report appears when the scan has finished. This page refreshes by itself." />`
      : !report ? html`<${Loading} />`
      : report.error ? html`<${Panel} title="Report"><${None} text=${report.error.status === 404 ? 'This job has no report.' : report.error.message} /></${Panel}>`
      : html`<${Report} r=${report.data} />`}
    <p><${Link} href="/jobs">← all jobs</${Link}></p>`;
}
