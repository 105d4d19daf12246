// Browser smoke test of the console's vendored libraries (console/static/vendor/, scripts/vendor-console.sh):
// a tiny static server on 127.0.0.1 sends console/static/ at /static/ and tests/browser/smoke/ at /smoke/
// with the console's Content-Security-Policy; headless chromium loads /smoke/index.html, whose app.js imports
// Preact + hooks + htm and uPlot by relative path (no bundler, no import map). Checks: the component renders,
// its useState counter works, a hostile string renders as text, uPlot draws a <canvas>, and the page sees no
// CSP violation and no error. Exit status 0 on success, 1 on failure.
//   node tests/browser/smoke.mjs         (CHROMIUM=path overrides /usr/bin/chromium; SCREENSHOTS=dir)
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot, launchBrowser, newPage, screenshot, check, assertClean, run } from './lib.mjs';

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const roots = {
  '/static/': path.join(repoRoot, 'console', 'static'),
  '/smoke/': path.join(repoRoot, 'tests', 'browser', 'smoke'),
};
const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8', '.png': 'image/png', '.svg': 'image/svg+xml', '.json': 'application/json',
};

function startServer() {
  const server = http.createServer(async (req, res) => {
    const headers = { 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff' };
    try {
      let urlPath = decodeURIComponent(new URL(req.url, 'http://x').pathname);
      if (urlPath.endsWith('/')) urlPath += 'index.html';
      const prefix = Object.keys(roots).find((p) => urlPath.startsWith(p));
      const file = prefix && path.resolve(roots[prefix], '.' + urlPath.slice(prefix.length - 1));
      if (!file || !file.startsWith(roots[prefix] + path.sep)) throw Object.assign(new Error(), { code: 'ENOENT' });
      const body = await readFile(file);
      res.writeHead(200, { ...headers, 'Content-Type': types[path.extname(file)] || 'application/octet-stream' });
      res.end(body);
    } catch (e) {
      res.writeHead(e.code === 'ENOENT' || e.code === 'EISDIR' ? 404 : 500, { ...headers, 'Content-Type': 'text/plain' });
      res.end('not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

await run('smoke', async (cleanups) => {
  const server = await startServer();
  cleanups.push(() => new Promise((r) => server.close(r)));
  const base = `http://127.0.0.1:${server.address().port}`;

  const t0 = Date.now();
  const browser = await launchBrowser();
  cleanups.push(() => browser.close());
  console.log(`smoke: chromium ${browser.version()} launched in ${Date.now() - t0} ms`);

  const t = await newPage(browser);
  const response = await t.page.goto(`${base}/smoke/index.html`);
  check(response && response.ok(), `GET /smoke/index.html: HTTP ${response && response.status()}`);
  check((response.headers()['content-security-policy'] || '') === CSP, 'the page was served without the CSP');

  const fail = (what) => (e) => {
    throw new Error(`${what} (${e.message.split('\n')[0]})\n  page errors: ${JSON.stringify(t.pageErrors)}` +
                    `\n  console errors: ${JSON.stringify(t.consoleErrors)}\n  CSP: ${JSON.stringify(t.cspViolations)}` +
                    `\n  failed requests: ${JSON.stringify(t.failedRequests)}`);
  };
  await t.page.waitForSelector('#title', { timeout: 10000 }).catch(fail('the Preact component did not render'));
  check((await t.page.textContent('#title')) === 'coldscan smoke', 'the title has the wrong text');

  check((await t.page.textContent('#count')) === '0', 'the counter does not start at 0');
  await t.page.click('#increment');
  await t.page.waitForFunction(() => document.getElementById('count').textContent === '1', null, { timeout: 5000 })
    .catch(fail('clicking the button did not change the counter'));
  await t.page.click('#increment');
  await t.page.waitForFunction(() => document.getElementById('count').textContent === '2', null, { timeout: 5000 })
    .catch(fail('a second click did not change the counter'));

  const hostile = '<img src=x onerror=alert(1)>';
  check((await t.page.textContent('#hostile')) === hostile, 'the hostile string is not shown as text in #hostile');
  check((await t.page.textContent('body')).includes(hostile), 'the page text does not contain the hostile string');
  check((await t.page.locator('img').count()) === 0, 'an <img> element exists: the hostile string became markup');

  await t.page.waitForSelector('#chart canvas', { timeout: 5000 }).catch(fail('uPlot drew no <canvas>'));
  const canvas = await t.page.$eval('#chart canvas', (c) => ({ w: c.width, h: c.height }));
  check(canvas.w > 0 && canvas.h > 0, `the uPlot canvas is empty (${canvas.w}x${canvas.h})`);
  check((await t.page.locator('.uplot .u-legend').count()) === 1, 'uPlot drew no legend');
  // uPlot.min.css is applied (a linked stylesheet, allowed by style-src 'self'): .uplot's font-family comes from it.
  const font = await t.page.$eval('.uplot', (e) => getComputedStyle(e).fontFamily);
  check(/system-ui|sans-serif/.test(font), `uPlot.min.css is not applied (font-family ${font})`);

  const shot = await screenshot(t.page, 'smoke');
  console.log(`smoke: screenshot ${shot}`);

  // Let any late violation report arrive before judging.
  await t.page.waitForTimeout(200);
  check(t.failedRequests.length === 0, `failed requests:\n  ${t.failedRequests.join('\n  ')}`);
  check(t.httpErrors.length === 0, `HTTP errors:\n  ${t.httpErrors.join('\n  ')}`);
  assertClean(t);
  check(t.consoleErrors.length === 0, `console errors:\n  ${t.consoleErrors.join('\n  ')}`);
});
