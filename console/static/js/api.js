// The /v1 API client and the connection state the layout shows: whether a token is needed (any 401) and
// why the service cannot be reached (network errors and 5xx, for the banner). Views get data or an ApiError.
const TOKEN_KEY = 'coldscan.token';

export const getToken = () => {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
};
export function setToken(token) {
  try { token ? sessionStorage.setItem(TOKEN_KEY, token) : sessionStorage.removeItem(TOKEN_KEY); } catch { /* private mode */ }
}

// A tiny store: {needToken, banner}; the layout subscribes.
let state = { needToken: false, banner: null };
const listeners = new Set();
export const connection = () => state;
export function subscribe(fn) { listeners.add(fn); return () => listeners.delete(fn); }
function update(patch) {
  const next = { ...state, ...patch };
  if (next.needToken === state.needToken && next.banner === state.banner) return;
  state = next;
  listeners.forEach((fn) => fn(state));
}
export const tokenEntered = () => update({ needToken: false });

export class ApiError extends Error {
  constructor(message, status, { transient = false, auth = false } = {}) {
    super(message);
    this.status = status;
    this.transient = transient; // worth retrying: the service is down, restarting or overloaded
    this.auth = auth;
  }
}

// api('/v1/scans', {method: 'POST', body: {...}}). local: errors stay with the caller (no banner), for
// panels whose endpoint may be missing (nodes without the fleet's database).
export async function api(path, { method = 'GET', body, local = false, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    const err = new ApiError(`Cannot reach the coldscan service (${e.message || e})`, 0, { transient: true });
    if (!local) update({ banner: err.message });
    throw err;
  }
  let data = null;
  const text = await res.text().catch(() => '');
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (res.ok) {
    if (!local) update({ banner: null, needToken: false });
    return data ?? {};
  }
  const message = (data && typeof data.error === 'string' && data.error) || `HTTP ${res.status} ${res.statusText}`.trim();
  if (res.status === 401) {
    update({ needToken: true });
    throw new ApiError(message, 401, { auth: true });
  }
  const transient = res.status >= 500;
  if (transient && !local) update({ banner: `The coldscan service answered ${res.status}: ${message}` });
  throw new ApiError(message, res.status, { transient });
}

// '?a=1&b=2' from an object, leaving out empty values (the API would filter on an empty string).
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
