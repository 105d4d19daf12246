// `/signatures`: the loaded signature set, its engines and files, reload, and the last retro-hunt (what the
// last update found in content already scanned). Falls back to /v1/healthz where /v1/signatures is missing.
import { useState } from '../../vendor/hooks.module.js';
import { html, Link, Panel, ErrorText, Loading, KV, useResource, jobHref, Head } from '../components.js';
import { api } from '../api.js';
import { num, time, relative, str, short, label } from '../format.js';

function Engine({ name, e }) {
  if (!e) return html`<tr><td>${name}</td><td colspan="4" class="muted">not loaded</td></tr>`;
  return html`<tr data-testid="engine-row" data-engine=${name}>
    <td>${name}</td><td>${str(e.engine_version)}</td>
    <td class="num">${num(e.signature_count ?? e.rule_count)} ${e.rule_count !== undefined ? 'rules' : 'signatures'}</td>
    <td class="mono" title=${e.fingerprint || ''}>${short(e.fingerprint)}</td>
    <td class="path">${e.path && html`<div>${e.path}</div>`}${(e.files || []).map((f) => html`<div>${f}</div>`)}</td></tr>`;
}

// A retro-hunt's JSON, whatever its keys: scalars as a list, job ids as links, hits as a table.
function Hunt({ hunt }) {
  const hits = Array.isArray(hunt.hits) ? hunt.hits : [];
  const jobs = Array.isArray(hunt.reports_updated) ? hunt.reports_updated : [];
  const lists = Object.entries(hunt).filter(([k, v]) => Array.isArray(v) && k !== 'hits' && k !== 'reports_updated');
  return html`<div data-testid="retro-hunt-result">
    <${KV} obj=${hunt} fmt=${{ at: (v) => `${time(v)} (${relative(v)})`, detection_set: short }} />
    ${lists.map(([k, v]) => html`<p><strong>${label(k)}: </strong>${v.length ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') : '—'}</p>`)}
    <p><strong>reports updated: </strong>${jobs.length ? jobs.map((id, i) => html`${i ? ', ' : ''}<${Link} href=${jobHref(id)} class="mono">${String(id)}</${Link}>`) : 'none'}</p>
    ${hits.length > 0 && html`<table class="grid">
      <${Head} cols="Content (SHA-256)|Signatures|Where" />
      <tbody>${hits.map((x) => html`<tr data-testid="hunt-hit">
        <td class="mono" title=${x.sha256 || ''}>${short(x.sha256, 16)}</td><td>${(x.signatures || []).join(', ')}</td>
        <td class="path">${(x.places || []).map((p) => html`<div>${str(p.target)} ${str(p.device)}:${str(p.path)}</div>`)}</td></tr>`)}</tbody></table>`}
  </div>`;
}

// last_retro_hunt is {at, result: HUNT}; a POST answers HUNT itself.
const flatten = (x) => (x && x.result && typeof x.result === 'object' ? { at: x.at, ...x.result } : x);

export function Signatures() {
  const sigs = useResource('/v1/signatures');
  const missing = sigs.error && sigs.error.status === 404;
  const health = useResource('/v1/healthz'); // the fallback: the set's fingerprint and load time
  const [action, setAction] = useState(null); // {busy, error, result, kind}
  const run = async (kind) => {
    setAction({ busy: true, kind });
    try {
      const result = await api(kind === 'reload' ? '/v1/signatures/reload' : '/v1/retro-hunt', { method: 'POST', body: {} });
      setAction({ kind, result });
      sigs.refresh();
      health.refresh();
    } catch (e) { setAction({ kind, error: e }); }
  };
  const s = sigs.data || (missing && health.data ? { signature_set: health.data.signature_set, loaded_at: health.data.signatures_loaded_at } : null);
  const hunt = flatten((action && action.kind === 'hunt' && action.result) || (s && s.last_retro_hunt));
  return html`
    <div class="view-head"><h1 data-testid="view-title">Signatures</h1><span class="spacer"></span>
      <button data-testid="reload" class="primary" disabled=${action && action.busy} onClick=${() => run('reload')}>Reload signatures</button>
      <button data-testid="retro-hunt" disabled=${action && action.busy} onClick=${() => run('hunt')}>Run retro-hunt</button></div>
    ${action && html`<div class="notice" data-testid="action-result">
      ${action.busy ? (action.kind === 'reload' ? 'Reloading…' : 'Hunting…')
        : action.error ? html`<span class="error-text">${action.error.message}</span>`
        : action.kind === 'reload' ? html`Reloaded: <span class="mono" data-testid="reloaded-set">${str(action.result.signature_set)}</span>`
        : 'Retro-hunt finished (below).'}</div>`}
    ${!s ? (sigs.error && !missing ? html`<${ErrorText} error=${sigs.error} />` : html`<${Loading} />`) : html`
      <${Panel} title="Loaded set">
        <dl class="kv">
          <dt>fingerprint</dt><dd class="mono" data-testid="signature-set">${str(s.signature_set)}</dd>
          <dt>loaded</dt><dd>${time(s.loaded_at)} <span class="muted">${relative(s.loaded_at)}</span></dd>
          ${s.detection_set && html`<dt>detection lines</dt><dd class="mono">${s.detection_set}</dd>`}
          ${s.engine_part && html`<dt>engine part</dt><dd class="mono">${s.engine_part}</dd>`}
        </dl>
        ${missing && html`<p class="muted">This service does not describe its engines (GET /v1/signatures: ${sigs.error.message}).</p>`}
      </${Panel}>
      ${!missing && html`<${Panel} title="Engines"><table class="grid">
        <${Head} cols="Engine|Version|#Loaded|Fingerprint|Database" />
        <tbody><${Engine} name="clamav" e=${s.clamav} /><${Engine} name="yara" e=${s.yara} /></tbody></table></${Panel}>`}
      <${Panel} title="Last retro-hunt">${hunt ? html`<${Hunt} hunt=${hunt} />`
        : html`<p class="muted">No retro-hunt since the service started. One runs after each reload that adds signatures.</p>`}</${Panel}>`}`;
}
