// SPDX-License-Identifier: Apache-2.0
// meshprom's dashboard: a mesh overview, namespace, deployment and pod views built from the
// queries the Linkerd viz metrics API sends (shared/spec/linkerd-workload.md 3.2), an
// expression browser, and the targets and TSDB status pages. Every number comes from
// meshprom's own HTTP API; every table and chart shows the PromQL it ran.
'use strict';

const state = { interval: 10000, timer: null, gen: 0 };
const $main = document.getElementById('main');
const $status = document.getElementById('status');

// ---- API ---------------------------------------------------------------------------------

async function api(path, params) {
  const opts = params ? { method: 'POST', body: new URLSearchParams(params) } : {};
  const r = await fetch(path, opts);
  let j;
  try {
    j = await r.json();
  } catch (e) {
    throw new Error(`${path}: HTTP ${r.status}`);
  }
  if (j.status !== 'success') throw new Error(j.error || `${path}: HTTP ${r.status}`);
  return j.data;
}
const instant = async (q) => (await api('api/v1/query', { query: q })).result;
const rangeQuery = (q, start, end, step) =>
  api('api/v1/query_range', { query: q, start: start, end: end, step: step });

// Prometheus's LabelSet.String() as the metrics API renders selectors: keys sorted,
// comma-space separated, values quoted.
function sel(labels) {
  const keys = Object.keys(labels).sort();
  return '{' + keys.map((k) => `${k}=${JSON.stringify(labels[k])}`).join(', ') + '}';
}

// The metrics API's StatSummary queries for one grouping (linkerd-workload.md 3.2).
function statQueries(labels, by, window = '1m') {
  const s = sel(labels);
  const q = {
    requests: `sum(increase(response_total${s}[${window}])) by (${by}, classification, tls)`,
  };
  for (const p of ['0.5', '0.95', '0.99'])
    q['p' + p] = `histogram_quantile(${p}, sum(irate(response_latency_ms_bucket${s}[${window}])) by (le, ${by}))`;
  return q;
}

// Rows keyed by the `by` labels with Linkerd's arithmetic: values rounded, SR = success /
// (success + failure), RPS = requests / window, latency rounded ms, TLS share of requests.
async function stats(labels, by, window = '1m', windowSecs = 60) {
  const q = statQueries(labels, by, window);
  const names = by.split(', ');
  const key = (m) => names.map((n) => m[n] || '').join('\u0000');
  const [req, p50, p95, p99] = await Promise.all([q.requests, q['p0.5'], q['p0.95'], q['p0.99']].map(instant));
  const rows = new Map();
  const row = (m) => {
    const k = key(m);
    if (!rows.has(k)) {
      const r = { success: 0, failure: 0, tls: 0, p50: NaN, p95: NaN, p99: NaN, labels: {} };
      for (const n of names) r.labels[n] = m[n] || '';
      rows.set(k, r);
    }
    return rows.get(k);
  };
  for (const s of req) {
    const v = Math.round(Number(s.value[1])) || 0;
    const r = row(s.metric);
    if (s.metric.classification === 'success') r.success += v;
    else if (s.metric.classification === 'failure') r.failure += v;
    if (s.metric.tls === 'true') r.tls += v;
  }
  for (const [res, f] of [[p50, 'p50'], [p95, 'p95'], [p99, 'p99']])
    for (const s of res) row(s.metric)[f] = Math.round(Number(s.value[1]));
  for (const r of rows.values()) {
    const total = r.success + r.failure;
    r.sr = total ? r.success / total : NaN;
    r.rps = total / windowSecs;
    r.tlsPct = total ? r.tls / total : NaN;
  }
  return { rows: [...rows.values()], queries: Object.values(q) };
}

// Meshed pods: proxies the linkerd-proxy job scrapes successfully / all it scrapes.
async function meshed(labels, by) {
  const s = sel(Object.assign({ job: 'linkerd-proxy' }, labels));
  const qUp = `sum(up${s}) by (${by})`, qAll = `count(up${s}) by (${by})`;
  const [up, all] = await Promise.all([instant(qUp), instant(qAll)]);
  const names = by.split(', ');
  const key = (m) => names.map((n) => m[n] || '').join('\u0000');
  const out = new Map();
  for (const s of all) out.set(key(s.metric), { up: 0, all: Number(s.value[1]) });
  for (const s of up) {
    const e = out.get(key(s.metric));
    if (e) e.up = Number(s.value[1]);
  }
  return { map: out, key, queries: [qUp, qAll] };
}

// ---- formatting ----------------------------------------------------------------------------

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const fmtPct = (v) => (Number.isFinite(v) ? (v * 100).toFixed(2) + '%' : '-');
const fmtRps = (v) => (Number.isFinite(v) ? v.toFixed(1) + ' rps' : '-');
const fmtMs = (v) => (Number.isFinite(v) ? v + ' ms' : '-');
const health = (sr) => (!Number.isFinite(sr) ? '' : sr >= 0.99 ? 'good' : sr >= 0.95 ? 'warn' : 'bad');
function fmtNum(v) {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
  return String(Math.round(v * 1000) / 1000);
}
function fmtAgo(iso) {
  const t = Date.parse(iso);
  if (!t || t < 0) return 'never';
  const s = Math.max(0, (Date.now() - t) / 1000);
  return s < 60 ? `${s.toFixed(1)}s ago` : `${Math.floor(s / 60)}m ${Math.floor(s % 60)}s ago`;
}
const link = (href, text) => `<a href="${esc(href)}" data-link>${esc(text)}</a>`;

// A disclosure under each table/chart with the PromQL behind it and a link to the browser.
function queriesBlock(queries) {
  const body = queries.map((q) => esc(q)).join('\n');
  const first = queries[0] ? 'graph?expr=' + encodeURIComponent(queries[0]) : 'graph';
  return `<div class="q"><a data-toggle>queries</a> · <a href="${esc(first)}" data-link>open in query browser</a><code>${body}</code></div>`;
}

// A sortable table. cols: [{title, num, get(row) -> sort value, html(row) -> cell}].
function table(el, cols, rows, initial = 0, asc = true) {
  let sortCol = initial, sortAsc = asc;
  const draw = () => {
    const get = cols[sortCol].get;
    const sorted = rows.slice().sort((a, b) => {
      const x = get(a), y = get(b);
      const nx = typeof x === 'number' && Number.isNaN(x), ny = typeof y === 'number' && Number.isNaN(y);
      if (nx || ny) return nx === ny ? 0 : nx ? 1 : -1;
      const c = x < y ? -1 : x > y ? 1 : 0;
      return sortAsc ? c : -c;
    });
    const head = cols.map((c, i) => `<th data-col="${i}" class="${c.num ? 'num' : ''} ${i === sortCol ? 'sorted' + (sortAsc ? ' asc' : '') : ''}">${esc(c.title)}</th>`).join('');
    const body = sorted.length
      ? sorted.map((r) => '<tr>' + cols.map((c) => `<td class="${c.num ? 'num' : ''}">${c.html(r)}</td>`).join('') + '</tr>').join('')
      : `<tr><td colspan="${cols.length}" class="empty">No data</td></tr>`;
    el.innerHTML = `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
    el.querySelectorAll('th').forEach((th) =>
      th.addEventListener('click', () => {
        const i = Number(th.dataset.col);
        sortAsc = i === sortCol ? !sortAsc : !cols[i].num;
        sortCol = i;
        draw();
      }));
  };
  draw();
}

const statCols = (nameCol) => [
  nameCol,
  { title: 'Success Rate', num: true, get: (r) => r.sr, html: (r) => `<span class="sr ${health(r.sr)}">${fmtPct(r.sr)}</span>` },
  { title: 'RPS', num: true, get: (r) => r.rps, html: (r) => fmtRps(r.rps) },
  { title: 'P50', num: true, get: (r) => r.p50, html: (r) => fmtMs(r.p50) },
  { title: 'P95', num: true, get: (r) => r.p95, html: (r) => fmtMs(r.p95) },
  { title: 'P99', num: true, get: (r) => r.p99, html: (r) => fmtMs(r.p99) },
  { title: 'TLS', num: true, get: (r) => r.tlsPct, html: (r) => fmtPct(r.tlsPct) },
];

const meshedCol = (m, labelsOf) => ({
  title: 'Meshed', num: true,
  get: (r) => (m.map.get(m.key(labelsOf(r))) || { up: 0 }).up,
  html: (r) => {
    const e = m.map.get(m.key(labelsOf(r)));
    return e ? `${e.up}/${e.all}` : '-';
  },
});

// ---- charts --------------------------------------------------------------------------------

const COLORS = ['#2b5fd9', '#1a8f4c', '#c62f2f', '#c88a00', '#7b3fc4', '#0f8b8d', '#d0499a', '#5d6b82'];

// Matrix results aligned on the query's step grid for uPlot ([xs, ...ys], null = no point).
function align(result, start, end, step) {
  const xs = [];
  for (let t = start; t <= end + 1e-9; t += step) xs.push(Math.round(t * 1000) / 1000);
  const index = new Map(xs.map((t, i) => [t, i]));
  const ys = result.map((s) => {
    const y = new Array(xs.length).fill(null);
    for (const [t, v] of s.values) {
      const i = index.get(Math.round(t * 1000) / 1000);
      if (i !== undefined) y[i] = Number.isFinite(Number(v)) ? Number(v) : null;
    }
    return y;
  });
  return [xs, ...ys];
}

const seriesName = (m) => {
  const keys = Object.keys(m).filter((k) => k !== '__name__').sort();
  const name = m.__name__ || '';
  return keys.length || !name ? name + '{' + keys.map((k) => `${k}="${m[k]}"`).join(', ') + '}' : name;
};

function drawChart(el, title, data, names, fmt) {
  el.innerHTML = '';
  if (typeof uPlot === 'undefined') {
    el.innerHTML = '<div class="error">charting library missing</div>';
    return;
  }
  if (names.length === 0) {
    el.innerHTML = `<div class="empty">${esc(title)}: no data</div>`;
    return;
  }
  const width = Math.max(320, el.clientWidth || 600);
  new uPlot({
    title: title, width: width, height: 220,
    series: [{}].concat(names.map((n, i) => ({ label: n, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false, value: (u, v) => (v == null ? '-' : fmt(v)) }))),
    axes: [{}, { size: 60, values: (u, vals) => vals.map((v) => fmt(v)) }],
    legend: { show: names.length <= 12 },
  }, data, el);
}

async function rangeChart(el, title, queries, names, windowSecs, fmt) {
  const end = Date.now() / 1000;
  const step = Math.max(10, Math.round(windowSecs / 240));
  const start = end - windowSecs;
  const results = await Promise.all(queries.map((q) => rangeQuery(q, start, end, step)));
  const merged = [];
  const labels = [];
  results.forEach((r, i) => r.result.forEach((s) => {
    merged.push(s);
    labels.push(names ? names[i] : seriesName(s.metric));
  }));
  drawChart(el, title, align(merged, start, end, step), labels, fmt);
}

// ---- pages ---------------------------------------------------------------------------------

function shell(html) {
  $main.innerHTML = html;
}

async function overview() {
  shell(`<h1>Service mesh</h1><h2>Namespaces</h2><div class="card"><div id="ns"></div><div id="nsq"></div></div>`);
  const by = 'namespace';
  const [st, m] = await Promise.all([stats({ direction: 'inbound' }, by), meshed({}, by)]);
  const seen = new Set(st.rows.map((r) => r.labels.namespace));
  for (const k of m.map.keys()) if (!seen.has(k)) st.rows.push({ labels: { namespace: k }, sr: NaN, rps: 0, p50: NaN, p95: NaN, p99: NaN, tlsPct: NaN });
  const nameCol = { title: 'Namespace', get: (r) => r.labels.namespace, html: (r) => `<span class="dot ${health(r.sr)}"></span>` + link('namespaces/' + encodeURIComponent(r.labels.namespace), r.labels.namespace) };
  const cols = statCols(nameCol);
  cols.splice(1, 0, meshedCol(m, (r) => r.labels));
  table(document.getElementById('ns'), cols, st.rows);
  document.getElementById('nsq').innerHTML = queriesBlock(st.queries.concat(m.queries));
}

async function namespacePage(ns) {
  shell(`<div class="crumbs">${link('', 'mesh')} / namespace</div><h1>${esc(ns)}</h1>
    <h2>Deployments</h2><div class="card"><div id="deps"></div><div id="depsq"></div></div>
    <h2>Pods</h2><div class="card"><div id="pods"></div><div id="podsq"></div></div>`);
  await Promise.all([deploymentsTable(ns), podsTable(ns, null)]);
}

async function deploymentsTable(ns) {
  const by = 'namespace, deployment';
  const [st, m] = await Promise.all([stats({ direction: 'inbound', namespace: ns }, by), meshed({ namespace: ns }, 'deployment')]);
  const seen = new Set(st.rows.map((r) => r.labels.deployment));
  for (const k of m.map.keys()) if (!seen.has(k)) st.rows.push({ labels: { namespace: ns, deployment: k }, sr: NaN, rps: 0, p50: NaN, p95: NaN, p99: NaN, tlsPct: NaN });
  st.rows = st.rows.filter((r) => r.labels.deployment);
  const nameCol = {
    title: 'Deployment', get: (r) => r.labels.deployment,
    html: (r) => `<span class="dot ${health(r.sr)}"></span>` + link(`namespaces/${encodeURIComponent(ns)}/deployments/${encodeURIComponent(r.labels.deployment)}`, r.labels.deployment),
  };
  const cols = statCols(nameCol);
  cols.splice(1, 0, meshedCol(m, (r) => ({ deployment: r.labels.deployment })));
  table(document.getElementById('deps'), cols, st.rows);
  document.getElementById('depsq').innerHTML = queriesBlock(st.queries.concat(m.queries));
}

async function podsTable(ns, dep) {
  const labels = { direction: 'inbound', namespace: ns };
  if (dep) labels.deployment = dep;
  const st = await stats(labels, 'namespace, pod');
  const cols = statCols({ title: 'Pod', get: (r) => r.labels.pod, html: (r) => `<span class="dot ${health(r.sr)}"></span>${esc(r.labels.pod)}` });
  table(document.getElementById('pods'), cols, st.rows.filter((r) => r.labels.pod));
  document.getElementById('podsq').innerHTML = queriesBlock(st.queries);
}

const WINDOWS = [['5m', 300], ['15m', 900], ['1h', 3600], ['6h', 21600]];

async function deploymentPage(ns, dep) {
  const win = Number(new URLSearchParams(location.search).get('window')) || 900;
  const buttons = WINDOWS.map(([n, s]) => `<button data-window="${s}" class="${s === win ? 'on' : ''}">${n}</button>`).join('');
  shell(`<div class="crumbs">${link('', 'mesh')} / ${link('namespaces/' + encodeURIComponent(ns), ns)} / deployment</div>
    <h1>${esc(dep)}</h1>
    <div class="toolbar">Window: ${buttons}</div>
    <div class="charts"><div class="card"><div id="c-sr" class="chart"></div><div id="q-sr"></div></div>
    <div class="card"><div id="c-rps" class="chart"></div><div id="q-rps"></div></div>
    <div class="card"><div id="c-lat" class="chart"></div><div id="q-lat"></div></div></div>
    <h2>Inbound (who calls ${esc(dep)})</h2><div class="card"><div id="in"></div><div id="inq"></div></div>
    <h2>Outbound (whom ${esc(dep)} calls)</h2><div class="card"><div id="out"></div><div id="outq"></div></div>
    <h2>Pods</h2><div class="card"><div id="pods"></div><div id="podsq"></div></div>`);
  $main.querySelectorAll('[data-window]').forEach((b) => b.addEventListener('click', () => {
    history.replaceState(null, '', `?window=${b.dataset.window}`);
    route();
  }));
  const s = sel({ deployment: dep, direction: 'inbound', namespace: ns });
  const ok = sel({ classification: 'success', deployment: dep, direction: 'inbound', namespace: ns });
  const qSR = `sum(rate(response_total${ok}[1m])) / sum(rate(response_total${s}[1m]))`;
  const qRPS = `sum(rate(response_total${s}[1m]))`;
  const qLat = ['0.5', '0.95', '0.99'].map((p) => `histogram_quantile(${p}, sum(irate(response_latency_ms_bucket${s}[1m])) by (le))`);
  document.getElementById('q-sr').innerHTML = queriesBlock([qSR]);
  document.getElementById('q-rps').innerHTML = queriesBlock([qRPS]);
  document.getElementById('q-lat').innerHTML = queriesBlock(qLat);
  const charts = Promise.all([
    rangeChart(document.getElementById('c-sr'), 'Success rate', [qSR], ['success rate'], win, (v) => (v * 100).toFixed(1) + '%'),
    rangeChart(document.getElementById('c-rps'), 'Requests per second', [qRPS], ['rps'], win, (v) => v.toFixed(2)),
    rangeChart(document.getElementById('c-lat'), 'Latency (ms)', qLat, ['p50', 'p95', 'p99'], win, (v) => v.toFixed(0)),
  ]);
  const inbound = stats({ direction: 'outbound', dst_deployment: dep, dst_namespace: ns }, 'namespace, deployment').then((st) => {
    const cols = statCols({ title: 'From', get: (r) => r.labels.namespace + '/' + r.labels.deployment, html: (r) => link(`namespaces/${encodeURIComponent(r.labels.namespace)}/deployments/${encodeURIComponent(r.labels.deployment)}`, `${r.labels.namespace}/${r.labels.deployment}`) });
    table(document.getElementById('in'), cols, st.rows.filter((r) => r.labels.deployment));
    document.getElementById('inq').innerHTML = queriesBlock(st.queries);
  });
  const outbound = stats({ deployment: dep, direction: 'outbound', namespace: ns }, 'dst_namespace, dst_deployment').then((st) => {
    const cols = statCols({ title: 'To', get: (r) => r.labels.dst_namespace + '/' + r.labels.dst_deployment, html: (r) => link(`namespaces/${encodeURIComponent(r.labels.dst_namespace)}/deployments/${encodeURIComponent(r.labels.dst_deployment)}`, `${r.labels.dst_namespace}/${r.labels.dst_deployment}`) });
    table(document.getElementById('out'), cols, st.rows.filter((r) => r.labels.dst_deployment));
    document.getElementById('outq').innerHTML = queriesBlock(st.queries);
  });
  await Promise.all([charts, inbound, outbound, podsTable(ns, dep)]);
}

async function graphPage() {
  const params = new URLSearchParams(location.search);
  const expr = params.get('expr') || '';
  const win = Number(params.get('range')) || 3600;
  const tab = params.get('tab') || 'table';
  const buttons = WINDOWS.map(([n, s]) => `<option value="${s}" ${s === win ? 'selected' : ''}>${n}</option>`).join('');
  shell(`<h1>Expression browser</h1>
    <textarea id="expr" spellcheck="false" placeholder="PromQL expression, e.g. sum(rate(response_total[1m])) by (deployment)">${esc(expr)}</textarea>
    <div class="toolbar"><button class="primary" id="run">Execute</button>
      <button id="t-table" class="${tab === 'table' ? 'on' : ''}">Table</button>
      <button id="t-graph" class="${tab === 'graph' ? 'on' : ''}">Graph</button>
      <select id="range">${buttons}</select><span id="info" class="q"></span></div>
    <div id="err"></div><div class="card"><div id="out"></div></div>`);
  const $expr = document.getElementById('expr');
  const go = (t) => {
    const p = new URLSearchParams({ expr: $expr.value, tab: t, range: document.getElementById('range').value });
    history.replaceState(null, '', 'graph?' + p.toString());
    route();
  };
  document.getElementById('run').addEventListener('click', () => go(tab));
  document.getElementById('t-table').addEventListener('click', () => go('table'));
  document.getElementById('t-graph').addEventListener('click', () => go('graph'));
  document.getElementById('range').addEventListener('change', () => go(tab));
  $expr.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      go(tab);
    }
  });
  if (!expr) return;
  const $out = document.getElementById('out');
  const t0 = performance.now();
  try {
    if (tab === 'graph') {
      const end = Date.now() / 1000, step = Math.max(1, Math.round(win / 250));
      const d = await rangeQuery(expr, end - win, end, step);
      if (d.resultType !== 'matrix') throw new Error(`unexpected result type ${d.resultType}`);
      drawChart($out, expr, align(d.result, end - win, end, step), d.result.map((s) => seriesName(s.metric)), fmtNum);
      document.getElementById('info').textContent = `${d.result.length} series · ${Math.round(performance.now() - t0)} ms`;
    } else {
      const d = await api('api/v1/query', { query: expr });
      let rows;
      if (d.resultType === 'vector') rows = d.result.map((s) => [seriesName(s.metric), s.value[1]]);
      else if (d.resultType === 'matrix') rows = d.result.map((s) => [seriesName(s.metric), s.values.map((v) => `${v[1]} @${v[0]}`).join('\n')]);
      else rows = [['', d.result[1]]];
      $out.innerHTML = `<table><thead><tr><th>Series</th><th>Value</th></tr></thead><tbody>${rows.length ? rows.map((r) => `<tr><td class="mono">${esc(r[0])}</td><td class="mono">${esc(r[1]).replace(/\n/g, '<br>')}</td></tr>`).join('') : '<tr><td colspan="2" class="empty">Empty query result</td></tr>'}</tbody></table>`;
      document.getElementById('info').textContent = `${d.resultType} · ${rows.length} result(s) · ${Math.round(performance.now() - t0)} ms`;
    }
  } catch (e) {
    document.getElementById('err').innerHTML = `<div class="error">${esc(e.message)}</div>`;
    $out.innerHTML = '';
  }
}

async function targetsPage() {
  shell(`<h1>Targets</h1><div id="pools"></div>`);
  const d = await api('api/v1/targets?state=active');
  const pools = new Map();
  for (const t of d.activeTargets) {
    if (!pools.has(t.scrapePool)) pools.set(t.scrapePool, []);
    pools.get(t.scrapePool).push(t);
  }
  const $pools = document.getElementById('pools');
  if (!pools.size) $pools.innerHTML = '<div class="empty">No targets.</div>';
  for (const [pool, ts] of [...pools.entries()].sort()) {
    const up = ts.filter((t) => t.health === 'up').length;
    const div = document.createElement('div');
    div.innerHTML = `<h2>${esc(pool)} (${up}/${ts.length} up)</h2><div class="card"></div>`;
    $pools.appendChild(div);
    table(div.querySelector('.card'), [
      { title: 'Endpoint', get: (t) => t.scrapeUrl, html: (t) => `<span class="mono">${esc(t.scrapeUrl)}</span>` },
      { title: 'State', get: (t) => t.health, html: (t) => `<span class="sr ${t.health === 'up' ? 'good' : t.health === 'down' ? 'bad' : ''}">${esc(t.health.toUpperCase())}</span>` },
      { title: 'Labels', get: (t) => JSON.stringify(t.labels), html: (t) => `<span class="labels">${Object.entries(t.labels).map(([k, v]) => `<span>${esc(k)}="${esc(v)}"</span>`).join('')}</span>` },
      { title: 'Last Scrape', get: (t) => t.lastScrape, html: (t) => esc(fmtAgo(t.lastScrape)) },
      { title: 'Duration', num: true, get: (t) => t.lastScrapeDuration, html: (t) => (t.lastScrapeDuration * 1000).toFixed(1) + ' ms' },
      { title: 'Error', get: (t) => t.lastError, html: (t) => `<span class="sr bad">${esc(t.lastError || '')}</span>` },
    ], ts);
  }
}

// Counters of the server's own /metrics (text format), for churn figures.
async function selfMetric(names) {
  const r = await fetch('metrics');
  const text = await r.text();
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line);
    if (m && names.includes(m[1]) && !m[2]) out[m[1]] = Number(m[3]);
  }
  return out;
}

async function tsdbPage() {
  shell(`<h1>TSDB status</h1><div class="card"><div id="head" class="kv"></div></div><div id="lists"></div>`);
  const [d, self] = await Promise.all([api('api/v1/status/tsdb'), selfMetric(['prometheus_tsdb_head_series_created_total', 'prometheus_tsdb_head_series_removed_total', 'prometheus_tsdb_head_chunks', 'prometheus_tsdb_blocks_loaded'])]);
  const h = d.headStats || {};
  const time = (ms) => (Number.isFinite(ms) && ms > 0 && ms < 9e15 ? new Date(ms).toISOString() : '-');
  const kv = [
    ['Head series', h.numSeries], ['Head chunks', h.chunkCount], ['Label pairs', h.numLabelPairs],
    ['Head min time', time(h.minTime)], ['Head max time', time(h.maxTime)],
    ['Series created (churn)', self.prometheus_tsdb_head_series_created_total],
    ['Series removed (churn)', self.prometheus_tsdb_head_series_removed_total],
    ['Blocks loaded', self.prometheus_tsdb_blocks_loaded],
  ];
  document.getElementById('head').innerHTML = kv.map(([k, v]) => `<div>${esc(k)}</div><div>${esc(v === undefined ? '-' : v)}</div>`).join('');
  const lists = [
    ['Top series count by metric name', d.seriesCountByMetricName],
    ['Top label names with value count', d.labelValueCountByLabelName],
    ['Top label names by memory used', d.memoryInBytesByLabelName],
    ['Top series count by label value pairs', d.seriesCountByLabelValuePair],
  ];
  const $lists = document.getElementById('lists');
  for (const [title, list] of lists) {
    const div = document.createElement('div');
    div.innerHTML = `<h2>${esc(title)}</h2><div class="card"></div>`;
    $lists.appendChild(div);
    table(div.querySelector('.card'), [
      { title: 'Name', get: (e) => e.name, html: (e) => `<span class="mono">${esc(e.name)}</span>` },
      { title: 'Count', num: true, get: (e) => e.value, html: (e) => esc(e.value) },
    ], list || [], 1, false);
  }
}

// ---- routing -------------------------------------------------------------------------------

const base = new URL(document.baseURI).pathname;

async function route() {
  const gen = ++state.gen;
  clearTimeout(state.timer);
  const path = decodeURIComponent(location.pathname.startsWith(base) ? location.pathname.slice(base.length) : location.pathname.replace(/^\//, ''));
  const parts = path.split('/').filter(Boolean);
  let page = 'overview', run, refresh = true;
  if (parts[0] === 'graph') { page = 'graph'; run = graphPage; refresh = false; }
  else if (parts[0] === 'targets') { page = 'targets'; run = targetsPage; }
  else if (parts[0] === 'tsdb-status') { page = 'tsdb'; run = tsdbPage; }
  else if (parts[0] === 'namespaces' && parts.length === 4 && parts[2] === 'deployments') run = () => deploymentPage(parts[1], parts[3]);
  else if (parts[0] === 'namespaces' && parts.length >= 2) run = () => namespacePage(parts[1]);
  else run = overview;
  document.querySelectorAll('[data-nav]').forEach((a) => a.classList.toggle('active', a.dataset.nav === page));
  const scroll = window.scrollY;
  try {
    await run();
    $status.textContent = `updated ${new Date().toLocaleTimeString()}` + (refresh ? ` · every ${state.interval / 1000}s` : '');
  } catch (e) {
    if (gen !== state.gen) return;
    $main.insertAdjacentHTML('afterbegin', `<div class="error">${esc(e.message)}</div>`);
    $status.textContent = 'error';
  }
  if (gen !== state.gen) return;
  window.scrollTo(0, scroll);
  if (refresh) state.timer = setTimeout(() => { if (gen === state.gen) route(); }, state.interval);
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a) return;
  if (a.hasAttribute('data-toggle')) {
    a.parentElement.classList.toggle('open');
    e.preventDefault();
    return;
  }
  if (a.hasAttribute('data-link') && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
    e.preventDefault();
    history.pushState(null, '', a.getAttribute('href') || base);
    route();
  }
});
window.addEventListener('popstate', route);

// The refresh period is the server's global scrape interval (the metrics API checks windows
// against it the same way).
async function init() {
  try {
    const cfg = await api('api/v1/status/config');
    const m = /^global:[\s\S]*?^\s+scrape_interval:\s*(\d+)(ms|s|m)\b/m.exec(cfg.yaml || '');
    if (m) state.interval = Math.max(1000, Number(m[1]) * { ms: 1, s: 1000, m: 60000 }[m[2]]);
  } catch (e) {
    // keep the default
  }
  route();
}
init();
