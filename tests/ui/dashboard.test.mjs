// SPDX-License-Identifier: Apache-2.0
// tests/ui/dashboard.test.mjs: the dashboard in headless Chromium (playwright-core driving
// Debian's /usr/bin/chromium) against a running meshprom that scrapes meshsim's emojivoto.
//   node dashboard.test.mjs BASE_URL SCREENSHOT_DIR
// Checks: every page loads with no console errors or page errors; the namespace table for
// emojivoto lists web, emoji, voting and vote-bot with the numbers /api/v1/query gives for
// the same queries at that moment; a query typed into the expression browser renders a graph;
// the targets and TSDB status pages show the scraped proxies. Screenshots on failure.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [base, shots = '/tmp/meshprom-ui-shots'] = process.argv.slice(2);
if (!base) {
  console.error('usage: node dashboard.test.mjs BASE_URL [SCREENSHOT_DIR]');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const failures = [];
const fail = (msg) => {
  failures.push(msg);
  console.error('FAIL ' + msg);
};

async function api(q, time) {
  const params = { query: q };
  if (time !== undefined) params.time = String(time);
  const r = await fetch(`${base}/api/v1/query`, { method: 'POST', body: new URLSearchParams(params) });
  const j = await r.json();
  if (j.status !== 'success') throw new Error(`${q}: ${j.error}`);
  return j.data.result;
}

// Waits (bounded) until every emojivoto deployment has inbound request counts over 1m.
async function waitForData(deadlineMs) {
  const q = 'sum(increase(response_total{direction="inbound", namespace="emojivoto"}[1m])) by (deployment)';
  while (Date.now() < deadlineMs) {
    try {
      const r = await api(q);
      if (new Set(r.map((s) => s.metric.deployment)).size >= 4) return true;
    } catch (e) {
      // not ready yet
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
  return false;
}

// Linkerd's table numbers from the API, as the metrics API computes them (spec 3.2).
const REQUESTS_Q = 'sum(increase(response_total{direction="inbound", namespace="emojivoto"}[1m])) by (namespace, deployment, classification, tls)';
async function expectedRows(time) {
  const req = await api(REQUESTS_Q, time);
  const rows = {};
  for (const s of req) {
    const d = s.metric.deployment;
    rows[d] ??= { success: 0, failure: 0 };
    const v = Math.round(Number(s.value[1])) || 0;
    if (s.metric.classification === 'success') rows[d].success += v;
    else rows[d].failure += v;
  }
  const out = {};
  for (const [d, r] of Object.entries(rows)) {
    const t = r.success + r.failure;
    out[d] = { sr: t ? ((r.success / t) * 100).toFixed(2) + '%' : '-', rps: (t / 60).toFixed(1) + ' rps' };
  }
  return out;
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
const page = await browser.newPage({ viewport: { width: 1366, height: 800 } });
const errors = [];
page.on('console', (m) => {
  if (m.type() === 'error') errors.push(m.text());
});
page.on('pageerror', (e) => errors.push(String(e)));

// Loads a page, waits for its content, and records two timings: the browser's load event
// (document and assets) and the time until the data-driven element appeared.
const timings = [];
async function visit(path, ready) {
  errors.length = 0;
  const t0 = Date.now();
  let renderMs = NaN;
  try {
    await page.goto(base + path, { waitUntil: 'load', timeout: 20000 });
    await page.waitForSelector(ready, { timeout: 15000 });
    renderMs = Date.now() - t0;
    await page.waitForLoadState('networkidle', { timeout: 20000 });
  } catch (e) {
    fail(`${path}: ${e.message.split('\n')[0]}`);
  }
  const loadMs = await page.evaluate(() => {
    const n = performance.getEntriesByType('navigation')[0];
    return n ? Math.round(n.loadEventEnd - n.startTime) : NaN;
  });
  const shown = await page.$$eval('.error', (els) => els.map((e) => e.textContent));
  if (errors.length) fail(`${path}: console errors: ${errors.join(' | ')}`);
  if (shown.length) fail(`${path}: error shown: ${shown.join(' | ')}`);
  timings.push({ page: path, load_ms: loadMs, data_ms: renderMs });
  console.log(JSON.stringify({ page: path, load_ms: loadMs, data_ms: renderMs }));
  if (failures.length) await page.screenshot({ path: `${shots}/${path.replace(/[^a-z0-9]+/gi, '_') || 'root'}.png`, fullPage: true });
}

if (!(await waitForData(Date.now() + 90000))) fail('no emojivoto data through the API within 90 s');

await visit('/', 'table tbody tr td a');
const nsNames = await page.$$eval('#ns tbody tr td:first-child', (tds) => tds.map((t) => t.textContent.trim()));
if (!nsNames.includes('emojivoto')) fail(`overview lacks emojivoto: ${nsNames}`);

// The namespace table equals what the API answers for the same query at the same evaluation
// time (the page asks for "now"; its answer carries the time it was evaluated at).
let pageTime;
page.on('response', async (r) => {
  if (!r.url().endsWith('/api/v1/query')) return;
  const body = r.request().postData() || '';
  if (new URLSearchParams(body).get('query') !== REQUESTS_Q) return;
  try {
    const j = await r.json();
    if (j.data.result.length) pageTime = j.data.result[0].value[0];
  } catch (e) {
    // navigation away while reading: the next load sets it again
  }
});
pageTime = undefined;
await visit('/namespaces/emojivoto', '#deps tbody tr td a');
const rows = await page.$$eval('#deps tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())));
const got = Object.fromEntries(rows.map((r) => [r[0], { sr: r[2], rps: r[3] }]));
const deps = Object.keys(got).sort().join(',');
if (deps !== 'emoji,vote-bot,voting,web') fail(`deployments listed: ${deps}`);
if (pageTime === undefined) {
  fail('the page did not send the requests query');
} else {
  const want = await expectedRows(pageTime);
  const same = Object.keys(want).length === 4 && Object.entries(want).every(([d, w]) => got[d] && got[d].sr === w.sr && got[d].rps === w.rps);
  if (!same) fail(`table ${JSON.stringify(got)} != api at ${pageTime} ${JSON.stringify(want)}`);
}
// the refresh keeps the table current: a new request goes out within two intervals
const before = pageTime;
await page.waitForTimeout(12000);
if (pageTime === before) fail('namespace page did not refresh within 12 s');

await visit('/namespaces/emojivoto/deployments/web', '#c-rps .uplot, #c-rps .empty');
const rpsCanvas = await page.$('#c-rps canvas');
if (!rpsCanvas) fail('deployment page: no RPS chart drawn');

await visit('/graph', 'textarea#expr');
await page.fill('textarea#expr', 'sum(rate(response_total{namespace="emojivoto"}[1m])) by (deployment)');
await page.click('#t-graph');
try {
  await page.waitForSelector('#out .uplot canvas', { timeout: 15000 });
} catch (e) {
  fail('expression browser: graph not rendered');
}
await page.fill('textarea#expr', 'sum(rate(response_total[1m]) by (');
await page.click('#run');
await page.waitForSelector('.error', { timeout: 10000 }).catch(() => fail('expression browser: no parse error shown'));
errors.length = 0;

await visit('/targets', '.card table tbody tr');
const targetsText = await page.innerText('main');
if (!/linkerd-proxy/.test(targetsText) || !/UP/.test(targetsText)) fail('targets page lacks up linkerd-proxy targets');

await visit('/tsdb-status', '#head div');
const head = await page.innerText('#head');
if (!/Head series\s+\d+/.test(head)) fail(`tsdb status: ${head}`);

if (failures.length) await page.screenshot({ path: `${shots}/last.png`, fullPage: true });
await browser.close();
const worst = Math.max(...timings.map((t) => t.load_ms).filter(Number.isFinite));
console.log(JSON.stringify({ failures: failures.length, worst_load_ms: worst, target_load_ms: 200 }));
process.exit(failures.length ? 1 : 0);
