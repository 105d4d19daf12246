// The web console in Debian's chromium (playwright-core), against a real `coldscan serve` that
// tests/e2e/console.sh started with a token and two finished scans (clean.qcow2; drop.qcow2: 1,000 EICAR
// copies and a file named `<img src=x onerror=...>`). Every check compares what the page shows with what
// the API answers. Exit status 0 when every check held, 1 at the first that did not.
//
// Environment: COLDSCAN_SERVER, COLDSCAN_TOKEN, CONSOLE_WORK (the layout: fast/, slow/), CONSOLE_RESTART (a
// script that restarts the service), SCREENSHOTS (where the PNGs go).
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { launchBrowser, newPage, screenshot } from './lib.mjs';

const server = process.env.COLDSCAN_SERVER;
const token = process.env.COLDSCAN_TOKEN;
const work = process.env.CONSOLE_WORK;
const drop = `${work}/fast/drop.qcow2`;
const hostileName = '<img src=x onerror=window.__coldscan_xss=1>';

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

async function api(path, options = {}) {
  const response = await fetch(server + path, {
    ...options,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...(options.headers || {}) },
  });
  const body = await response.json();
  check(response.ok, `${options.method || 'GET'} ${path}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

const testid = (id) => `[data-testid="${id}"]`;
const count = (page, id) => page.locator(testid(id)).count();
const text = async (page, id) => (await page.locator(testid(id)).first().textContent()).trim();

async function waitFor(what, probe, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (value) {
      return value;
    }
    check(Date.now() < deadline, `timed out after ${seconds} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// Without the token the console asks for it and shows no data; with it, the overview fills.
async function tokenFirst(page) {
  await page.goto(`${server}/`);
  await page.waitForSelector(testid('token-form'));
  check((await count(page, 'host-row')) === 0, 'hosts shown without the token');
  check(!(await page.textContent('body')).includes('fasthost'), 'a host name shown without the token');
  await screenshot(page, 'token');
  await page.fill(testid('token-input'), token);
  await page.click(testid('token-submit'));
  await waitFor('two host rows', async () => (await count(page, 'host-row')) === 2);
  console.log('ok: the console asked for the token and showed nothing before it');
}

async function overview(page) {
  const health = await api('/v1/healthz');
  const hosts = await api('/v1/hosts');
  check((await count(page, 'host-row')) === hosts.hosts.length, 'host rows differ from /v1/hosts');
  check((await count(page, 'datastore-row')) === hosts.datastores.length, 'datastore rows differ');
  await waitFor('the succeeded count', async () => {
    const shown = await page.locator(`${testid('state-count')}[data-state="succeeded"]`).textContent();
    return shown.trim() === String(health.jobs.succeeded);
  });
  check((await count(page, 'latest-finding')) === 10, 'not the 10 latest findings');
  const set = await text(page, 'overview-signature-set');
  check(health.signature_set.startsWith(set.replace(/[^0-9a-f]/g, '').slice(0, 8)), `signature set ${set}`);
  check((await count(page, 'node-row')) >= 1, 'no node row');
  await screenshot(page, 'overview');
  console.log(`ok: overview: ${hosts.hosts.length} hosts, ${health.jobs.succeeded} succeeded, set ${set}`);
}

async function findingRows(page) {
  return page.locator(testid('finding-row')).count();
}

// A guest's file name is text: no element, no script.
async function hostileName_(page) {
  await page.goto(`${server}/findings?path=${encodeURIComponent('onerror')}`);
  await waitFor('the hostile file name', async () => (await findingRows(page)) === 1);
  const shown = (await page.locator(testid('finding-path')).first().textContent()).trim();
  check(shown.endsWith(`/drop/${hostileName}`), `the path shows as ${shown}`);
  check((await page.locator(`${testid('finding-row')} img`).count()) === 0, 'an <img> element in the row');
  check((await page.evaluate(() => window.__coldscan_xss)) === undefined, 'the file name ran as script');
  console.log(`ok: the file ${hostileName} shows as text and ran nothing`);
}

// 1,001 findings of drop.qcow2: paged, filtered, exported, charted; the URL keeps the filter.
async function findingsSearch(page) {
  await page.goto(`${server}/findings?image=${encodeURIComponent(drop)}`);
  await waitFor('1001 findings', async () => (await text(page, 'findings-total')) === '1001');
  const firstPage = await page.locator(testid('finding-path')).allTextContents();
  check(firstPage.length === 50, `${firstPage.length} rows on the first page`);
  await page.click(testid('next-page'));
  await waitFor('the second page', async () => {
    const second = await page.locator(testid('finding-path')).allTextContents();
    return second.length === 50 && !second.some((path) => firstPage.includes(path));
  });
  const api_page = await api(`/v1/findings?image=${encodeURIComponent(drop)}&offset=50&limit=50`);
  const second = await page.locator(testid('finding-path')).allTextContents();
  check(JSON.stringify(second.map((p) => p.trim())) === JSON.stringify(api_page.findings.map((f) => f.path)),
        'the second page differs from the API');
  await page.reload();
  await waitFor('the filter after a reload', async () => (await text(page, 'findings-total')) === '1001');
  await page.fill('input[name="path"]', 'eicar-5');
  await page.keyboard.press('Enter');
  await waitFor('the 100 findings of eicar-5NN', async () => (await text(page, 'findings-total')) === '100');
  check(page.url().includes('path='), 'the filter is not in the URL');
  const paths = await page.locator(testid('finding-path')).allTextContents();
  check(paths.length === 50 && paths.every((p) => p.includes('eicar-5')), 'a row outside the filter');
  await page.waitForSelector(`${testid('chart-per-day')} canvas`);
  check((await page.locator(testid('chart-per-signature')).textContent()).includes('Eicar'), 'no signature chart');
  await screenshot(page, 'findings', { fullPage: false });
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(testid('export-csv'))]);
  const csv = readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
  check(csv.length === 101, `the CSV export has ${csv.length} lines, not 101`);
  console.log('ok: 1,001 findings paged by 50, filtered to 100 (URL, reload), exported as CSV, charted');
}

async function scanFromConsole(page) {
  const target = `${work}/fast/infected.qcow2`;
  await page.goto(`${server}/`);
  await page.waitForSelector(testid('scan-target'));
  await page.fill(testid('scan-target'), target);
  await page.selectOption(testid('scan-priority'), 'on-demand');
  await page.click(testid('scan-submit'));
  await page.waitForURL(/\/jobs\/j-[0-9a-f]+$/);
  const id = page.url().split('/').pop();
  await waitFor('the job to succeed', async () =>
    (await page.locator(testid('job-detail')).getAttribute('data-status')) === 'succeeded', 120);
  const report = await api(`/v1/scans/${id}/report`);
  await waitFor('the detections', async () => (await count(page, 'detection-row')) === report.detections.length);
  check(report.detections.length > 0, 'the infected image has no detection');
  await screenshot(page, 'job');
  const findings = await api(`/v1/findings?image=${encodeURIComponent(target)}&limit=1`);
  await page.goto(`${server}/findings?image=${encodeURIComponent(target)}`);
  await waitFor('its findings', async () => (await text(page, 'findings-total')) === String(findings.total));
  console.log(`ok: a scan started from the console ran (${id}): ${report.detections.length} detections, ` +
              `${findings.total} findings shown`);
  // The same image again answers with that scan, unless "scan again" is ticked.
  const before = (await api(`/v1/scans/${id}`)).updated_at;
  await new Promise((resolve) => setTimeout(resolve, 1100)); // a new updated_at (whole seconds)
  await page.goto(`${server}/`);
  await page.fill(testid('scan-target'), target);
  await page.check(testid('scan-fresh'));
  await page.click(testid('scan-submit'));
  await page.waitForURL(`${server}/jobs/${id}`);
  await waitFor('the scan again', async () => {
    const job = await api(`/v1/scans/${id}`);
    return job.status === 'succeeded' && job.updated_at !== before;
  }, 120);
  console.log(`ok: "scan again" scanned ${id} once more`);
}

// A slow scan: on the plan under its host, then cancelled from its page.
async function planAndCancel(page) {
  const submitted = await api('/v1/scans', {
    method: 'POST',
    body: JSON.stringify({ targets: [`${work}/slow/slow-clean.qcow2`], priority: 'on-demand' }),
  });
  const id = submitted.jobs[0].id;
  await page.goto(`${server}/plan`);
  await waitFor('slowhost on the plan', async () =>
    (await page.locator(`${testid('plan-host')}[data-host="slowhost"]`).count()) === 1);
  await screenshot(page, 'plan');
  await page.goto(`${server}/jobs/${id}`);
  await page.click(testid('cancel'));
  await page.click(testid('confirm-cancel'));
  await waitFor('the cancelled job', async () =>
    (await page.locator(testid('job-detail')).getAttribute('data-status')) === 'cancelled', 60);
  check((await api(`/v1/scans/${id}`)).status === 'cancelled', 'the API does not say cancelled');
  await page.goto(`${server}/jobs?status=cancelled`);
  await waitFor('the cancelled row', async () =>
    (await page.locator(`${testid('job-row')}[data-id="${id}"]`).count()) === 1);
  const statuses = await page.locator(testid('job-row')).evaluateAll((rows) => rows.map((r) => r.dataset.status));
  check(statuses.every((s) => s === 'cancelled'), `the status filter shows ${statuses}`);
  const every = await api('/v1/scans?limit=100');
  await page.goto(`${server}/jobs`);
  await waitFor('every job', async () => (await count(page, 'job-row')) === every.jobs.length);
  check(every.total <= 100 && (await page.locator(testid('jobs-next')).isDisabled()), 'a next page of jobs');
  await screenshot(page, 'jobs');
  console.log(`ok: ${id} on the plan under slowhost, then cancelled from the console`);
}

async function signatures(page) {
  const loaded = await api('/v1/signatures');
  await page.goto(`${server}/signatures`);
  await waitFor('the signature set', async () => (await text(page, 'signature-set')) === loaded.signature_set);
  await page.click(testid('reload'));
  await waitFor('the reloaded set', async () => (await api('/v1/signatures')).loaded_at !== loaded.loaded_at);
  await screenshot(page, 'signatures');
  console.log('ok: the signature set shown and reloaded from the console');
}

// Another origin's page (another port of this host) sends what a browser lets any page send (a "simple"
// POST: no preflight) to reload the signatures, and tries to read the jobs: the reload does not happen and
// the read is blocked. (The service refuses the POST for its Origin before it looks at the token; the unit
// tests check that without a token too.)
async function otherOrigin(browser) {
  const attacker = http.createServer((_request, response) => {
    response.setHeader('Content-Type', 'text/html');
    response.end('<!doctype html><title>elsewhere</title>');
  });
  await new Promise((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  await new Promise((resolve) => setTimeout(resolve, 1100)); // loaded_at has whole seconds
  const before = (await api('/v1/signatures')).loaded_at;
  const t = await newPage(browser);
  try {
    await t.page.goto(`http://127.0.0.1:${attacker.address().port}/`);
    const read = await t.page.evaluate(async (server) => {
      await fetch(`${server}/v1/signatures/reload`, { method: 'POST', mode: 'no-cors', body: '{}' });
      return fetch(`${server}/v1/scans`).then((r) => `status ${r.status}`, (e) => `blocked: ${e}`);
    }, server);
    check(read.startsWith('blocked'), `another origin read /v1/scans: ${read}`);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a reload would be done by now
    check((await api('/v1/signatures')).loaded_at === before, 'a page elsewhere reloaded the signatures');
  } finally {
    await t.context.close();
    attacker.close();
  }
  console.log('ok: a page of another origin could neither reload the signatures nor read the jobs');
}

// The service restarts under an open page: an error shows, then the page recovers by itself.
async function restart(page) {
  await page.goto(`${server}/`);
  await waitFor('the overview', async () => (await count(page, 'host-row')) === 2);
  execFileSync(process.env.CONSOLE_RESTART, ['3'], { stdio: 'inherit' });
  await waitFor('the error banner', async () => (await count(page, 'error-banner')) > 0, 20);
  await waitFor('the recovery', async () =>
    (await count(page, 'error-banner')) === 0 && (await count(page, 'host-row')) === 2, 60);
  console.log('ok: the service restarted under the open overview; the page said so, then recovered');
}

async function main() {
  const browser = await launchBrowser();
  const t = await newPage(browser, { acceptDownloads: true, viewport: { width: 1400, height: 900 } });
  try {
    await tokenFirst(t.page);
    await overview(t.page);
    await hostileName_(t.page);
    await findingsSearch(t.page);
    await scanFromConsole(t.page);
    await planAndCancel(t.page);
    await signatures(t.page);
    await otherOrigin(browser);
    await restart(t.page);
    check(t.cspViolations.length === 0, `CSP violations: ${JSON.stringify(t.cspViolations)}`);
    check(t.pageErrors.length === 0, `page errors: ${t.pageErrors.join('\n')}`);
    console.log('ok: no CSP violation, no page error');
  } catch (error) {
    await screenshot(t.page, 'failure').catch(() => {});
    console.error(`FAIL: ${error.message}`);
    console.error(`at ${t.page.url()}: ${(await t.page.content().catch(() => '')).slice(0, 600)}`);
    console.error(`HTTP errors: ${t.httpErrors.join(', ')}; failed requests: ${t.failedRequests.join(', ')}`);
    console.error(`page errors: ${t.pageErrors.join('\n')}`);
    console.error(`CSP violations: ${JSON.stringify(t.cspViolations)}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

await main();
