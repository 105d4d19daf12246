// Formatting helpers. Every one accepts missing values (the API may add or omit fields) and returns '—'.
export const DASH = '—';
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

export const num = (v) => (isNum(v) ? v.toLocaleString('en-US') : DASH);

export function bytes(v) {
  if (!isNum(v)) return DASH;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}

export const rate = (v) => (isNum(v) ? `${bytes(Math.round(v))}/s` : DASH);

export function seconds(v) {
  if (!isNum(v)) return DASH;
  if (v < 1) return `${Math.round(v * 1000)} ms`;
  if (v < 60) return `${v.toFixed(v < 10 ? 2 : 1)} s`;
  const m = Math.floor(v / 60), s = Math.round(v % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export const percent = (v) => (isNum(v) ? `${Math.round(v * 100)}%` : DASH);

export function parseTime(iso) {
  if (typeof iso !== 'string' || !iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

// Absolute time in the operator's zone, ISO-like and sortable: 2026-12-07 23:06:49.
export function time(iso) {
  const t = parseTime(iso);
  if (t === null) return DASH;
  const d = new Date(t), p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// "in 5 min" / "3 h ago", relative to now (ms; the plan passes the service's clock).
export function relative(iso, now = Date.now()) {
  const t = parseTime(iso);
  if (t === null) return DASH;
  const d = Math.round((t - now) / 1000), a = Math.abs(d);
  if (a < 5) return 'now';
  const text = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 * 2 ? `${Math.round(a / 3600)} h`
    : `${Math.round(a / 86400)} d`;
  return d > 0 ? `in ${text}` : `${text} ago`;
}

export const short = (fp, n = 12) => (typeof fp === 'string' && fp ? fp.slice(0, n) : DASH);
export const str = (v) => (v === undefined || v === null || v === '' ? DASH : String(v));

// datetime-local value (operator's zone) <-> ISO 8601 UTC for the API and the URL.
export function localToIso(value) {
  if (!value) return '';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
export function isoToLocal(iso) {
  const t = parseTime(iso);
  if (t === null) return '';
  const d = new Date(t), p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

// RFC 4180 cell; a cell a spreadsheet would take for a formula gets a leading quote.
export function csvCell(v) {
  let s = v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
export const csv = (columns, rows) =>
  [columns, ...rows.map((r) => columns.map((c) => r[c]))].map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';

// Label of an API key: "bytes_not_read" -> "bytes not read".
export const label = (key) => String(key).replace(/_/g, ' ');
