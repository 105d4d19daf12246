// Shared helpers for the web console's browser tests: Playwright (playwright-core, from console/node_modules)
// driving Debian's chromium headless. Playwright never downloads a browser here; CHROMIUM overrides the path.
//
//   const browser = await launchBrowser();
//   const t = await newPage(browser);            // t.page, t.consoleErrors, t.pageErrors, t.cspViolations
//   await t.page.goto(url);
//   await screenshot(t.page, 'overview');        // $SCREENSHOTS/overview.png
//   assertClean(t);                              // throws unless no CSP violation and no page error
import { createRequire } from 'node:module';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// playwright-core lives in console/node_modules (scripts/install-deps.sh installs it), not next to
// this file, so resolve it from there.
function loadPlaywright() {
  const require = createRequire(path.join(repoRoot, 'console', 'package.json'));
  try {
    return require('playwright-core');
  } catch (e) {
    throw new Error(`playwright-core is not installed in ${path.join(repoRoot, 'console', 'node_modules')}: ` +
                    `run scripts/install-deps.sh (${e.message})`);
  }
}

export const chromiumPath = () => process.env.CHROMIUM || '/usr/bin/chromium';

// Launches headless chromium. --no-sandbox: the tests run as root, and chromium refuses to start its
// sandbox as root.
export async function launchBrowser({ args = [], ...options } = {}) {
  const executablePath = chromiumPath();
  if (!existsSync(executablePath)) {
    throw new Error(`no chromium at ${executablePath}: run scripts/install-deps.sh or set CHROMIUM`);
  }
  const { chromium } = loadPlaywright();
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', ...args], ...options });
}

// A fresh context and page that record what went wrong:
//   consoleErrors: console.error messages (chromium also logs CSP refusals there), as strings;
//   pageErrors:    uncaught exceptions and unhandled rejections, as strings;
//   cspViolations: securitypolicyviolation events ({directive, blockedURI, sourceFile, line, sample});
//   failedRequests: requests that failed at the network level ("METHOD url: reason");
//   httpErrors:    responses with status >= 400 ("STATUS METHOD url"; chromium's console error omits the URL).
// The CSP listener is installed through the DevTools protocol, so the page's own CSP does not block it.
export async function newPage(browser, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const t = { context, page, consoleErrors: [], pageErrors: [], cspViolations: [], failedRequests: [], httpErrors: [] };
  page.on('console', (m) => { if (m.type() === 'error') t.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => t.pageErrors.push(String(e && e.stack ? e.stack : e)));
  page.on('response', (r) => {
    if (r.status() >= 400) t.httpErrors.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  page.on('requestfailed', (r) => t.failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  await page.exposeBinding('__coldscanCspViolation', (_source, v) => { t.cspViolations.push(v); });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__coldscanCspViolation({
        directive: e.effectiveDirective || e.violatedDirective,
        blockedURI: e.blockedURI,
        sourceFile: e.sourceFile,
        line: e.lineNumber,
        sample: e.sample,
      });
    });
  });
  return t;
}

export const screenshotDir = () =>
  process.env.SCREENSHOTS || path.join(repoRoot, 'build', 'browser-screenshots');

// Saves a PNG of the page as $SCREENSHOTS/NAME.png (default build/browser-screenshots/) and returns its path.
export async function screenshot(page, name, { fullPage = true } = {}) {
  const dir = screenshotDir();
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name.replace(/[^A-Za-z0-9._-]+/g, '-')}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

export class TestFailure extends Error {}

export function check(condition, message) {
  if (!condition) throw new TestFailure(message);
}

// Throws unless the page saw no CSP violation and no uncaught error.
export function assertClean(t) {
  check(t.cspViolations.length === 0,
        `${t.cspViolations.length} CSP violation(s):\n  ${t.cspViolations.map((v) => JSON.stringify(v)).join('\n  ')}`);
  check(t.pageErrors.length === 0, `${t.pageErrors.length} page error(s):\n  ${t.pageErrors.join('\n  ')}`);
}

// Runs an async test body: prints "NAME: ok" and exits 0, or "NAME: FAIL: why" and exits 1.
// The body gets an array to push cleanups (async functions) onto; they run in reverse order either way.
export async function run(name, body) {
  const cleanups = [];
  let ok = false;
  const started = Date.now();
  try {
    await body(cleanups);
    ok = true;
  } catch (e) {
    const why = e instanceof TestFailure ? e.message : (e && e.stack) || String(e);
    console.error(`${name}: FAIL: ${why}`);
  } finally {
    for (const c of cleanups.reverse()) {
      try { await c(); } catch (e) { console.error(`${name}: cleanup: ${e.message || e}`); }
    }
  }
  if (ok) console.log(`${name}: ok (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  process.exit(ok ? 0 : 1);
}
