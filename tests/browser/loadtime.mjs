// Where the time to the home timeline's first page goes: many loads of `/`,
// each in a fresh browser context (empty cache), as the journeys' last
// measurement does, with the Navigation and Resource Timing of each load
// broken down into phases. run.sh starts chirp (SCRIPT=loadtime.mjs):
//   CHIRP_BIN=target/release/chirp SCRIPT=loadtime.mjs SCREENSHOTS= bash tests/browser/run.sh
//   RUNS      loads to measure (default 21)
//   VERBOSE=1 every load's timeline, not only the medians
//   TRACE=file a Chromium trace of the last load (chrome://tracing, or DevTools' Performance panel)
//   PROFILE=file a JavaScript CPU profile (.cpuprofile) of the last load

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import assert from 'node:assert/strict';

const BASE = process.env.CHIRP_URL;
const LOG = process.env.CHIRP_LOG_FILE;
const FIXTURES = process.env.FIXTURES;
const RUNS = Number(process.env.RUNS || 21);
const PASSWORD = 'correct horse battery';
assert(BASE && LOG && FIXTURES, 'run through run.sh (CHIRP_URL, CHIRP_LOG_FILE, FIXTURES)');

async function codeFor(email) {
  for (let i = 0; i < 50; i++) {
    for (const line of fs.readFileSync(LOG, 'utf8').split('\n').reverse()) {
      if (!line.includes('"chirp::mail"')) continue;
      let event;
      try { event = JSON.parse(line); } catch { continue; }
      const fields = event.fields || event;
      const m = fields.to === email && /code is:\s*(\d{6})/.exec(fields.message);
      if (m) return m[1];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no code for ${email}`);
}

// Waits until the client marks 'feed-first-page' (the home timeline's first
// page is drawn) through CDP alone: Playwright's locators would run their own
// script in the page while it loads, and that main-thread time would be
// counted against the page.
async function firstPageMark(page) {
  const cdp = await page.context().newCDPSession(page);
  const wait = cdp.send('Runtime.evaluate', {
    awaitPromise: true,
    returnByValue: true,
    expression: `new Promise((resolve) => {
      const seen = () => performance.getEntriesByName('feed-first-page').length > 0;
      if (seen()) return resolve(true);
      new PerformanceObserver((_, o) => { if (seen()) { o.disconnect(); resolve(true); } }).observe({ type: 'mark' });
    })`,
  });
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('no feed-first-page mark within 10 s')), 10000); });
  try { await Promise.race([wait, timeout]); } finally { clearTimeout(timer); await cdp.detach().catch(() => {}); }
}

async function call(method, path, { token, json, form } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) { headers['content-type'] = 'application/json'; body = JSON.stringify(json); }
  if (form) body = form;
  const r = await fetch(BASE + '/api/v1' + path, { method, headers, body });
  assert(r.ok, `${method} ${path}: ${r.status} ${await r.clone().text()}`);
  return r.status === 204 ? null : r.json();
}

async function signUp(username) {
  const email = `${username}@example.com`;
  await call('POST', '/register', { json: { email, username, name: username, password: PASSWORD } });
  const session = await call('POST', '/verify-register', { json: { email, code: await codeFor(email) } });
  return { token: session.access_token, id: session.user.id };
}

// The journeys' reader: 49 tweets in the home timeline, a few with an image.
const writer = await signUp('writer');
const reader = await signUp('reader');
await call('POST', `/user/${writer.id}/follow`, { token: reader.token });
for (let i = 0; i < 49; i++) {
  if (i % 10 === 3) {
    const form = new FormData();
    form.append('content', `Tweet ${i}, with a picture`);
    form.append('media', new Blob([fs.readFileSync(`${FIXTURES}/image.png`)], { type: 'image/png' }), 'card.png');
    await call('POST', '/tweet', { token: writer.token, form });
  } else {
    await call('POST', '/tweet', { token: writer.token, json: { content: `Tweet number ${i} in the reader's timeline` } });
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const login = await browser.newContext();
const signedIn = await login.request.post(BASE + '/api/v1/session', { data: { username: 'reader', password: PASSWORD } });
assert.equal(signedIn.status(), 200);
const storageState = await login.storageState();
await login.close();

const runs = [];
for (let i = 0; i < RUNS + 1; i++) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, storageState });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text()); });
  const trace = process.env.TRACE && i === RUNS;
  const profile = process.env.PROFILE && i === RUNS && await context.newCDPSession(page);
  if (profile) { await profile.send('Profiler.enable'); await profile.send('Profiler.setSamplingInterval', { interval: 100 }); await profile.send('Profiler.start'); }
  if (trace) await browser.startTracing(page, { path: process.env.TRACE, screenshots: false, categories: ['devtools.timeline', 'blink.user_timing', 'loading', 'v8.execute', 'disabled-by-default-devtools.timeline', 'navigation'] });
  await page.goto(BASE + '/');
  await firstPageMark(page);
  await page.locator('article.tweet').first().waitFor();
  if (trace) { await page.waitForTimeout(300); await browser.stopTracing(); }
  if (profile) fs.writeFileSync(process.env.PROFILE, JSON.stringify((await profile.send('Profiler.stop')).profile));
  const run = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const of = (p) => res.find((r) => new URL(r.name).pathname + new URL(r.name).search === p);
    const scripts = res.filter((r) => /\.js$/.test(new URL(r.name).pathname));
    const session = of('/api/v1/session');
    const timeline = of('/api/v1/timeline');
    const mark = performance.getEntriesByName('feed-first-page')[0];
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    const r = (x) => (x === undefined ? null : Math.round(x * 10) / 10);
    return {
      htmlResponseStart: r(nav.responseStart),
      htmlDone: r(nav.responseEnd),
      scriptsRequested: r(Math.min(...scripts.map((s) => s.startTime))),
      scriptsDone: r(Math.max(...scripts.map((s) => s.responseEnd))),
      domInteractive: r(nav.domInteractive),
      domContentLoaded: r(nav.domContentLoadedEventEnd),
      sessionStart: r(session && session.startTime),
      sessionWait: r(session && session.responseStart - session.requestStart),
      sessionDone: r(session && session.responseEnd),
      // 'link' alone: the fetch took the preload's answer; 'link,fetch': it did not
      sessionInitiators: res.filter((x) => x.name === session.name).map((x) => x.initiatorType).join(),
      timelineStart: r(timeline && timeline.startTime),
      timelineWait: r(timeline && timeline.responseStart - timeline.requestStart),
      timelineDone: r(timeline && timeline.responseEnd),
      timelineInitiators: res.filter((x) => x.name === timeline.name).map((x) => x.initiatorType).join(),
      firstContentfulPaint: r(fcp && fcp.startTime),
      firstPage: r(mark.startTime),
      requests: res.map((x) => `${r(x.startTime)}-${r(x.responseEnd)} ${x.initiatorType} ${new URL(x.name).pathname}${new URL(x.name).search}`),
    };
  });
  run.console = errors;
  await context.close();
  if (i > 0) runs.push(run); // the first load warms the server's own caches
  if (process.env.VERBOSE) console.log(JSON.stringify(run, null, 1));
}
await browser.close();

const median = (xs) => { const s = xs.filter((x) => x !== null).sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const keys = Object.keys(runs[0]).filter((k) => typeof runs[0][k] === 'number');
const summary = {};
for (const k of keys) {
  const xs = runs.map((r) => r[k]).filter((x) => x !== null).sort((x, y) => x - y);
  summary[k] = { median: median(xs), min: xs[0], max: xs[xs.length - 1] };
}
console.log(`${RUNS} loads of / (plus one discarded), ms from navigation start:`);
for (const [k, v] of Object.entries(summary)) console.log(`  ${k.padEnd(22)} median ${String(v.median).padStart(6)}   min ${String(v.min).padStart(6)}   max ${String(v.max).padStart(6)}`);
console.log(`  requests of /session: ${[...new Set(runs.map((r) => r.sessionInitiators))].join(' | ')}; of /timeline: ${[...new Set(runs.map((r) => r.timelineInitiators))].join(' | ')}`);
const warnings = [...new Set(runs.flatMap((r) => r.console))];
if (warnings.length) console.log('  console:', warnings);
if (process.env.METRICS_FILE) fs.writeFileSync(process.env.METRICS_FILE.replace(/metrics\.json$/, 'loadtime.json'), JSON.stringify({ summary, runs }, null, 1) + '\n');
