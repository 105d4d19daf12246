// `/findings`: search the stored findings (detections and files not fully scanned), 50 a page, export every
// page as CSV or JSON, and charts per day and per signature. The filter and the page live in the URL.
import { useState, useEffect, useRef } from '../../vendor/hooks.module.js';
import { html, Link, Panel, ErrorText, Loading, Badge, BarList, Path, useResource, navigate, jobHref, Head } from '../components.js';
import { api, query } from '../api.js';
import { num, time, str, short, localToIso, isoToLocal, csv } from '../format.js';

const FIELDS = ['signature', 'image', 'host', 'path', 'kind', 'since', 'until'];
const KINDS = ['DETECTION', 'ERROR', 'LIMIT_EXCEEDED', 'SKIPPED', 'TARGET_FAILED', 'FILESYSTEM_FAILED', 'NO_FILESYSTEM', 'IMAGE_CHANGED'];
const PAGE = 50;
const EXPORT_MAX = 100000, EXPORT_PAGE = 1000;
const COLUMNS = ['at', 'kind', 'signature', 'engine', 'image', 'host', 'datastore', 'device', 'path', 'sha256', 'signature_set', 'job', 'node'];

function FilterForm({ filter }) {
  const fromUrl = () => ({ ...filter, since: isoToLocal(filter.since), until: isoToLocal(filter.until) });
  const [form, setForm] = useState(fromUrl);
  useEffect(() => setForm(fromUrl()), [query(filter)]);
  const submit = (e) => {
    e.preventDefault();
    navigate(`/findings${query({ ...form, since: localToIso(form.since), until: localToIso(form.until) })}`);
  };
  const input = (name, type = 'search', extra = {}) => html`<label>${name}
    <input type=${type} name=${name} value=${form[name] || ''} ...${extra}
      onInput=${(e) => setForm({ ...form, [name]: e.currentTarget.value })} /></label>`;
  return html`<form class="filters" onSubmit=${submit}>
    ${input('signature', 'search', { placeholder: 'exact name' })} ${input('image', 'search', { placeholder: 'exact path' })}
    ${input('host')} ${input('path', 'search', { placeholder: 'contains' })}
    ${input('kind', 'search', { list: 'finding-kinds', placeholder: 'any' })}
    <datalist id="finding-kinds">${KINDS.map((k) => html`<option value=${k} />`)}</datalist>
    ${input('since', 'datetime-local')} ${input('until', 'datetime-local')}
    <button type="submit" class="primary">Search</button>
    ${FIELDS.some((f) => filter[f]) && html`<button type="button" class="ghost" onClick=${() => navigate('/findings')}>Clear</button>`}
  </form>`;
}

// Every page of the filter (1000 a request, up to 100,000 rows), then a download.
async function exportAll(filter, format, setStatus) {
  const rows = [];
  let total = Infinity;
  // Pages are newest first: findings recorded while the export runs would shift them (rows twice or
  // missing), so the export stops at the second it started, unless the filter says otherwise.
  const fixed = { ...filter, until: filter.until || new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
  while (rows.length < Math.min(total, EXPORT_MAX)) {
    setStatus(`Fetching ${num(rows.length)}${total < Infinity ? ` of ${num(Math.min(total, EXPORT_MAX))}` : ''}…`);
    const page = await api(`/v1/findings${query({ ...fixed, offset: rows.length, limit: EXPORT_PAGE })}`);
    const got = page.findings || [];
    total = typeof page.total === 'number' ? page.total : rows.length + got.length;
    rows.push(...got);
    if (got.length === 0) break;
  }
  rows.length = Math.min(rows.length, EXPORT_MAX);
  const body = format === 'csv' ? csv(COLUMNS, rows) : `[\n${rows.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`;
  const blob = new Blob([body], { type: format === 'csv' ? 'text/csv;charset=utf-8' : 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `coldscan-findings-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.${format}`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  setStatus(`Exported ${num(rows.length)} findings${total > EXPORT_MAX ? ` (the first ${num(EXPORT_MAX)} of ${num(total)})` : ''}.`);
}

function Export({ filter }) {
  const [status, setStatus] = useState('');
  const [busy, setBusy] = useState(false);
  const run = async (format) => {
    setBusy(true);
    try { await exportAll(filter, format, setStatus); } catch (e) { setStatus(`Export failed: ${e.message}`); } finally { setBusy(false); }
  };
  return html`<span class="export">
    <button class="small" data-testid="export-csv" disabled=${busy} onClick=${() => run('csv')}>Export CSV</button>
    <button class="small" data-testid="export-json" disabled=${busy} onClick=${() => run('json')}>Export JSON</button>
    <span class="muted" data-testid="export-status">${status}</span></span>`;
}

// Findings per day as uPlot bars, one slot a day (days without findings count 0, one empty day on each
// side). uPlot is loaded on demand: it is most of the console's weight and only this view needs it.
function PerDay({ days }) {
  const ref = useRef(null);
  useEffect(() => {
    const el = ref.current;
    const pts = days.map((d) => [Date.parse(`${d.day}T00:00:00Z`), d.count || 0]).filter(([t]) => !Number.isNaN(t)).sort((a, b) => a[0] - b[0]);
    if (!el || pts.length === 0) return;
    const byDay = new Map(pts), labels = [], ys = [];
    for (let t = pts[0][0] - 864e5; t <= pts[pts.length - 1][0] + 864e5 && labels.length < 400; t += 864e5) {
      labels.push(new Date(t).toISOString().slice(0, 10));
      ys.push(byDay.get(t) || 0);
    }
    let plot, gone = false, observer;
    import('../../vendor/uPlot.esm.js').then(({ default: uPlot }) => {
      if (gone) return;
      const size = () => ({ width: Math.max(200, el.clientWidth), height: 180 });
      const grid = { stroke: '#eef0f3' };
      plot = new uPlot({
        ...size(), legend: { show: false }, cursor: { y: false, points: { show: false } },
        scales: { x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] }, y: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] } },
        axes: [{ stroke: '#667085', grid, space: 70, incrs: [1, 2, 7, 14, 30, 60, 90],
                 values: (u, vals) => vals.map((v) => labels[v] || '') },
               { stroke: '#667085', grid, size: 44, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 1e5] }],
        series: [{}, { label: 'findings', stroke: '#b42318', fill: 'rgba(217,83,74,0.8)', width: 0,
          paths: uPlot.paths.bars({ size: [0.7, 48] }), points: { show: false } }],
      }, [labels.map((_, i) => i), ys], el);
      observer = new ResizeObserver(() => plot && plot.setSize(size()));
      observer.observe(el);
    });
    return () => { gone = true; observer && observer.disconnect(); plot && plot.destroy(); };
  }, [JSON.stringify(days)]);
  return html`<div class="chart" data-testid="chart-per-day" ref=${ref}>${days.length === 0 && html`<p class="muted">No findings.</p>`}</div>`;
}

function Table({ rows }) {
  return html`<table class="grid findings">
    <${Head} cols="When (UTC)|Kind|Signature / reason|Engine|Image|Host|Device|Path|SHA-256|Job" />
    <tbody>${rows.map((f) => html`<tr data-testid="finding-row">
      <td class="nowrap" title=${time(f.at)}>${str(f.at).replace('T', ' ').replace('Z', '')}</td><td><${Badge} value=${f.kind} /></td>
      <td>${str(f.signature)}</td><td>${str(f.engine)}</td><td class="path"><${Path} v=${f.image} /></td><td>${str(f.host)}</td>
      <td class="mono">${str(f.device)}</td><td class="path" data-testid="finding-path"><${Path} v=${f.path} /></td>
      <td class="mono" title=${f.sha256 || ''}>${short(f.sha256)}</td>
      <td class="mono nowrap">${f.job ? html`<${Link} href=${jobHref(f.job)} title=${f.job}>${short(f.job, 10)}</${Link}>` : '—'}</td></tr>`)}
    </tbody></table>`;
}

export function Findings({ query: q }) {
  const filter = Object.fromEntries(FIELDS.map((f) => [f, q.get(f) || '']));
  const offset = Math.max(0, parseInt(q.get('offset') || '0', 10) || 0);
  const page = useResource(`/v1/findings${query({ ...filter, offset, limit: PAGE })}`);
  const stats = useResource(`/v1/stats${query(filter)}`);
  const go = (o) => navigate(`/findings${query({ ...filter, offset: o || '' })}`);
  const d = page.data, rows = (d && d.findings) || [];
  const total = d && typeof d.total === 'number' ? d.total : null;
  const s = stats.data || {};
  const pickSignature = (sig) => navigate(`/findings${query({ ...filter, signature: sig })}`);
  return html`
    <div class="view-head"><h1 data-testid="view-title">Findings</h1></div>
    <${FilterForm} filter=${filter} />
    <div class="cols">
      <${Panel} title="Findings per day (UTC)">${stats.data ? html`<${PerDay} days=${s.per_day || []} />` : html`<${ErrorText} error=${stats.error} />`}</${Panel}>
      <${Panel} title="Top signatures">${stats.data ? html`<${BarList} testid="chart-per-signature" onPick=${pickSignature}
        items=${(s.per_signature || []).slice(0, 10).map((x) => ({ key: x.signature, count: x.count }))} />` : html`<${ErrorText} error=${stats.error} />`}</${Panel}>
      <${Panel} title="Per host">${stats.data && html`<${BarList} testid="chart-per-host"
        items=${(s.per_host || []).slice(0, 10).map((x) => ({ key: x.host, count: x.count }))} />`}</${Panel}>
    </div>
    <${Panel}>
      <div class="pager">
        <span><strong data-testid="findings-total">${total === null ? '—' : total}</strong> findings${total > 0 && rows.length > 0 ? html`<span class="muted">, showing ${num(offset + 1)}–${num(offset + rows.length)} of ${num(total)}</span>` : ''}</span>
        <button class="small" data-testid="prev-page" disabled=${offset === 0} onClick=${() => go(Math.max(0, offset - PAGE))}>← Prev</button>
        <button class="small" data-testid="next-page" disabled=${total === null || offset + PAGE >= total} onClick=${() => go(offset + PAGE)}>Next →</button>
        <span class="spacer"></span><${Export} filter=${filter} />
      </div>
      <${ErrorText} error=${page.error} />
      ${d ? (rows.length ? html`<${Table} rows=${rows} />` : html`<p class="muted">No findings match.</p>`) : !page.error && html`<${Loading} />`}
    </${Panel}>`;
}
