// coldscan web console: entry, router, layout and token gate. Views live in js/views/.
import { render } from './vendor/preact.module.js';
import { useState, useEffect } from './vendor/hooks.module.js';
import { html, Link } from './js/components.js';
import { connection, subscribe, getToken, setToken, tokenEntered } from './js/api.js';
import { Overview } from './js/views/overview.js';
import { Jobs } from './js/views/jobs.js';
import { Job } from './js/views/job.js';
import { Findings } from './js/views/findings.js';
import { Plan } from './js/views/plan.js';
import { Signatures } from './js/views/signatures.js';

const nav = [['/', 'Overview'], ['/jobs', 'Jobs'], ['/findings', 'Findings'], ['/plan', 'Plan'], ['/signatures', 'Signatures']];

function route(path, query) {
  const m = /^\/jobs\/([^/]+)$/.exec(path);
  if (m) return { key: 'job', view: html`<${Job} id=${safeDecode(m[1])} />` };
  const views = { '/': Overview, '/jobs': Jobs, '/findings': Findings, '/plan': Plan, '/signatures': Signatures };
  const View = views[path];
  if (View) return { key: path, view: html`<${View} query=${query} />` };
  return { key: 'none', view: html`<h1 data-testid="view-title">Not found</h1><p>No view at this address. <${Link} href="/">Overview</${Link}></p>` };
}

function safeDecode(s) {
  try { return decodeURIComponent(s); } catch { return s; }
}

function useLocation() {
  const read = () => ({ path: location.pathname.replace(/(.)\/+$/, '$1'), search: location.search });
  const [loc, setLoc] = useState(read);
  useEffect(() => {
    const on = () => { setLoc(read()); };
    addEventListener('popstate', on);
    addEventListener('coldscan:navigate', on);
    return () => { removeEventListener('popstate', on); removeEventListener('coldscan:navigate', on); };
  }, []);
  return loc;
}

function useConnection() {
  const [c, setC] = useState(connection());
  useEffect(() => subscribe(setC), []);
  return c;
}

// Shown instead of every view after a 401; the token goes to sessionStorage only.
function TokenForm({ onToken }) {
  const [value, setValue] = useState('');
  const refused = !!getToken();
  const submit = (e) => {
    e.preventDefault();
    if (value.trim()) onToken(value.trim());
  };
  return html`<form class="token-form panel" data-testid="token-form" onSubmit=${submit}>
    <h1 data-testid="view-title">Token required</h1>
    <p>${refused ? 'The service refused the stored token. Enter a valid one.'
                 : 'This coldscan service requires an API token (the [api] auth_token of its configuration).'}</p>
    <label>API token <input type="password" data-testid="token-input" autocomplete="off" autofocus
      value=${value} onInput=${(e) => setValue(e.currentTarget.value)} /></label>
    <button type="submit" class="primary" data-testid="token-submit">Continue</button>
    <p class="muted">Kept in this browser tab's session storage only.</p>
  </form>`;
}

function App() {
  const loc = useLocation();
  const conn = useConnection();
  const [generation, setGeneration] = useState(0); // remounts the view: fetch again with the new token
  const [hasToken, setHasToken] = useState(!!getToken());
  const onToken = (t) => { setToken(t); setHasToken(true); tokenEntered(); setGeneration((g) => g + 1); };
  const forget = () => { setToken(''); setHasToken(false); setGeneration((g) => g + 1); };
  const { key, view } = route(loc.path, new URLSearchParams(loc.search));
  const active = (href) => (href === '/' ? loc.path === '/' : loc.path === href || loc.path.startsWith(`${href}/`));
  return html`
    <header class="top">
      <${Link} href="/" class="brand">coldscan</${Link}>
      <nav>${nav.map(([href, text]) => html`
        <${Link} href=${href} class=${active(href) ? 'active' : ''} aria-current=${active(href) ? 'page' : undefined}>${text}</${Link}>`)}
      </nav>
      <span class="spacer"></span>
      ${hasToken && html`<button class="small ghost" data-testid="forget-token" onClick=${forget}>Forget token</button>`}
    </header>
    ${conn.banner && !conn.needToken && html`<div class="banner" role="status" data-testid="error-banner">
      <strong>Service unavailable.</strong> ${conn.banner} — retrying…</div>`}
    <main>
      ${conn.needToken ? html`<${TokenForm} onToken=${onToken} />` : html`<div key=${`${key}:${generation}`}>${view}</div>`}
    </main>`;
}

const root = document.getElementById('app');
root.textContent = ''; // the "loading" text index.html shows until this module runs (it stays if it fails)
render(html`<${App} />`, root);
