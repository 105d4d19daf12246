// Development server for the web console: serves console/static/ straight from the checkout (no C++ rebuild
// to try a change) the way `coldscan serve` does, and proxies the API to a running service.
//   /static/<path>                        console/static/<path>
//   /, /jobs, /jobs/<id>, /findings, ...  console/static/index.html (the views' URLs)
//   /v1/*                                 $COLDSCAN_SERVER (default http://127.0.0.1:8765), method, headers
//                                         and body as sent; Host and Origin rewritten to the upstream's so
//                                         the service's same-origin check passes
//   node tests/browser/dev-server.mjs [PORT]       (PORT or $PORT, default 8780; listens on 127.0.0.1)
// No dependencies; files are read on every request (no cache), so a reload shows the latest edit.
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const staticRoot = path.join(repoRoot, 'console', 'static');
const upstream = new URL(process.env.COLDSCAN_SERVER || 'http://127.0.0.1:8765');
const port = Number(process.argv[2] || process.env.PORT || 8780);

// The same policy and headers as console/src/assets.cpp.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const security = {
  'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff', 'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer', 'Cross-Origin-Opener-Policy': 'same-origin',
};
const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8', '.png': 'image/png', '.svg': 'image/svg+xml', '.json': 'application/json',
};
const isView = (p) => ['/', '/jobs', '/findings', '/plan', '/signatures'].includes(p) || /^\/jobs\/[^/]+$/.test(p);

async function sendFile(res, file, method) {
  const body = await readFile(file);
  res.writeHead(200, { ...security, 'Content-Type': types[path.extname(file)] || 'application/octet-stream',
                       'Cache-Control': 'no-store', 'Content-Length': body.length });
  res.end(method === 'HEAD' ? undefined : body);
}

function notFound(res, status = 404, text = 'not found') {
  res.writeHead(status, { ...security, 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(text + '\n');
}

// Buffers the body (the service refuses chunked bodies) and forwards the request.
async function proxy(req, res) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  const headers = { ...req.headers, host: upstream.host };
  if (headers.origin) headers.origin = upstream.origin;
  delete headers['transfer-encoding'];
  delete headers.connection;
  if (body.length || !['GET', 'HEAD'].includes(req.method)) headers['content-length'] = String(body.length);
  const up = http.request({ hostname: upstream.hostname, port: upstream.port, method: req.method,
                            path: req.url, headers }, (upRes) => {
    res.writeHead(upRes.statusCode, upRes.headers);
    upRes.pipe(res);
  });
  up.on('error', (e) => {
    if (res.headersSent) return res.destroy();
    res.writeHead(502, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: `dev-server: upstream ${upstream.origin}: ${e.message}` }));
  });
  up.end(body);
}

const server = http.createServer(async (req, res) => {
  try {
    const urlPath = new URL(req.url, 'http://x').pathname;
    if (urlPath === '/v1' || urlPath.startsWith('/v1/') || urlPath === '/healthz') return await proxy(req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') return notFound(res, 405, 'method not allowed');
    if (isView(urlPath)) return await sendFile(res, path.join(staticRoot, 'index.html'), req.method);
    if (urlPath.startsWith('/static/')) {
      const file = path.resolve(staticRoot, '.' + decodeURIComponent(urlPath.slice('/static'.length)));
      if (!file.startsWith(staticRoot + path.sep)) return notFound(res);
      return await sendFile(res, file, req.method);
    }
    notFound(res);
  } catch (e) {
    if (e.code === 'ENOENT' || e.code === 'EISDIR') return notFound(res);
    console.error(`dev-server: ${req.method} ${req.url}: ${e.message}`);
    if (!res.headersSent) notFound(res, 500, 'internal error');
  }
});

server.listen(port, '127.0.0.1', () => {
  console.log(`console dev server on http://127.0.0.1:${server.address().port}/ -> API ${upstream.origin}`);
});
