// `/plan`: the nightly windows and, per host, when each queued, paused or running job is expected to start
// and finish (the service's estimate; relative times against the service's clock). Refreshes every 5 s.
import { html, Link, Panel, ErrorText, Loading, Badge, useResource, jobHref, Head } from '../components.js';
import { time, relative, seconds, str, parseTime } from '../format.js';

function Windows({ windows }) {
  if (!Array.isArray(windows) || windows.length === 0) {
    return html`<p class="muted" data-testid="plan-windows">No nightly windows: nightly jobs may start at any time.</p>`;
  }
  return html`<ul class="windows" data-testid="plan-windows">${windows.map((w) => html`<li>
    <strong>${str(w.start)}–${str(w.end)}</strong> UTC
    <span class="muted"> ${Array.isArray(w.days) && w.days.length && w.days.length < 7 ? w.days.join(', ') : 'every day'}</span></li>`)}</ul>`;
}

function When({ iso, now }) {
  if (!iso) return html`<span class="muted">not planned</span>`;
  return html`<span>${relative(iso, now)}</span> <span class="muted nowrap">${time(iso)}</span>`;
}

function HostPlan({ host, jobs, now, info }) {
  return html`<${Panel} cls="plan-host" title=${host || '(no host)'}
      actions=${info && html`<span class="muted">${info.running ?? 0} running of ${info.max_concurrent_scans || '∞'}, ${info.queued ?? 0} queued</span>`}>
    <div data-testid="plan-host" data-host=${host}>
    ${jobs.length === 0 ? html`<p class="muted">Nothing queued.</p>` : html`<table class="grid">
      <${Head} cols="##|Job|State|Priority|Datastore|Start|Finish|#Estimate" />
      <tbody>${jobs.map((j, i) => html`<tr key=${j.id} data-testid="plan-job" data-id=${j.id}>
        <td class="num">${i + 1}</td><td class="mono"><${Link} href=${jobHref(j.id)}>${str(j.id)}</${Link}></td>
        <td><${Badge} value=${j.state} /></td><td>${str(j.priority)}</td><td>${str(j.datastore)}</td>
        <td><${When} iso=${j.start} now=${now} /></td><td><${When} iso=${j.finish} now=${now} /></td>
        <td class="num">${seconds(j.estimated_seconds)}</td></tr>`)}</tbody></table>`}
    </div></${Panel}>`;
}

export function Plan() {
  const plan = useResource('/v1/plan', { every: 5000 });
  const hosts = useResource('/v1/hosts', { every: 5000 });
  const p = plan.data;
  if (!p) return html`<h1 data-testid="view-title">Plan</h1>${plan.error ? html`<${ErrorText} error=${plan.error} />` : html`<${Loading} />`}`;
  const now = parseTime(p.now) ?? Date.now();
  const info = new Map(((hosts.data && hosts.data.hosts) || []).map((x) => [x.name, x]));
  // The service lists jobs by start (unplanned last); group them per host, keeping that order.
  const groups = new Map([...info.keys()].map((k) => [k, []]));
  for (const j of p.jobs || []) {
    if (!groups.has(j.host)) groups.set(j.host, []);
    groups.get(j.host).push(j);
  }
  const total = (p.jobs || []).length;
  return html`
    <div class="view-head"><h1 data-testid="view-title">Plan</h1>
      <span class="muted">${total} job${total === 1 ? '' : 's'} waiting or running · ${p.all_done ? html`all done ${relative(p.all_done, now)} (${time(p.all_done)})` : 'some jobs are not planned within the horizon'}</span></div>
    <${Panel} title="Nightly windows"><${Windows} windows=${p.windows} /></${Panel}>
    ${[...groups].map(([host, jobs]) => html`<${HostPlan} key=${host} host=${host} jobs=${jobs} now=${now} info=${info.get(host)} />`)}`;
}
