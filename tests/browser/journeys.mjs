// End-to-end journeys of the web client in a real browser (Debian's
// Chromium through playwright-core). run.sh starts chirp and sets:
//   CHIRP_URL       the server's origin
//   CHIRP_LOG_FILE  its JSON log, where the embedded mailer prints the codes
//   FIXTURES        a directory with image.png, video.mp4, not-an-image.png
//   SCREENSHOTS     where to save the README's screenshots
//   METRICS_FILE    where to write the load measurements (optional)

import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';

const require = createRequire(import.meta.url);
const BASE = process.env.CHIRP_URL;
const LOG = process.env.CHIRP_LOG_FILE;
const FIXTURES = process.env.FIXTURES;
const SCREENSHOTS = process.env.SCREENSHOTS || path.join(process.env.TMPDIR || '/tmp', 'chirp-screenshots');
const METRICS_FILE = process.env.METRICS_FILE;
assert(BASE && LOG && FIXTURES, 'run through run.sh (CHIRP_URL, CHIRP_LOG_FILE, FIXTURES)');
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const PASSWORD = 'correct horse battery';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const fixture = (name) => path.join(FIXTURES, name);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

let failures = 0;
const openPages = {};
fs.mkdirSync(SCREENSHOTS, { recursive: true });
async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    console.log(`ok    ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failures++;
    console.log(`FAIL  ${name}\n${e.stack || e}`);
    // What each open page showed when the step failed.
    for (const [who, p] of Object.entries(openPages)) {
      const file = path.join(SCREENSHOTS, `failed-${failures}-${who}.png`);
      await p.screenshot({ path: file, fullPage: true }).then(() => console.log(`      ${who}'s page: ${file}`), () => {});
    }
  }
}

// Every page must run under the CSP without a single violation, and without script errors.
const problems = [];
async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: DESKTOP, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return page;
}

async function codeFor(email) {
  for (let i = 0; i < 50; i++) {
    const lines = fs.readFileSync(LOG, 'utf8').split('\n').filter((l) => l.includes('"chirp::mail"'));
    for (const line of lines.reverse()) {
      let event;
      try { event = JSON.parse(line); } catch { continue; }
      const fields = event.fields || event;  // chirp's JSON log flattens the fields
      if (fields.to === email) {
        const m = /code is:\s*(\d{6})/.exec(fields.message);
        if (m) return m[1];
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no code for ${email} in ${LOG}`);
}

async function axeCheck(page, label) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`), [], `axe on ${label}`);
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

const heading = (page, text) => page.getByRole('heading', { level: 1, name: text }).waitFor();

async function signUp(page, user, { wrongCodeFirst = false } = {}) {
  await page.goto(BASE + '/signup');
  await heading(page, 'Create your account');
  await page.getByLabel('Email', { exact: true }).fill(user.email);
  await page.getByLabel('Username', { exact: true }).fill(user.username);
  await page.getByLabel('Name', { exact: true }).fill(user.name);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await heading(page, 'Enter your code');
  await page.getByText("the code is printed in the server's log").waitFor();
  if (wrongCodeFirst) {
    await page.getByLabel('Verification code').fill('000000');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('alert').filter({ hasText: 'That code is wrong or has expired' }).waitFor();
  }
  await page.getByLabel('Verification code').fill(await codeFor(user.email));
  await page.getByRole('button', { name: 'Create account' }).click();
  await heading(page, 'Home');
  assert.equal(new URL(page.url()).pathname, '/');
}

async function apiLogin(username) {
  const r = await fetch(BASE + '/api/v1/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: PASSWORD }) });
  assert.equal(r.status, 200);
  return (await r.json()).access_token;
}

async function apiTweet(token, content) {
  const r = await fetch(BASE + '/api/v1/tweet', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ content }) });
  assert.equal(r.status, 201);
  return r.json();
}

const alice = { email: 'alice@example.com', username: 'alice', name: 'Alice Liddell' };
const bob = { email: 'bob@example.com', username: 'bob', name: 'Bob Marley' };
const a = await newPage();
const b = await newPage();
openPages.a = a;
openPages.b = b;

await step('signed out, / leads to the login page; a wrong password gets a clear message', async () => {
  await a.goto(BASE + '/');
  await heading(a, 'Log in to chirp');
  assert.equal(new URL(a.url()).pathname, '/login');
  await axeCheck(a, 'login');
  await a.getByLabel('Username', { exact: true }).fill('nobody');
  await a.getByLabel('Password', { exact: true }).fill('wrong password');
  await a.getByRole('button', { name: 'Log in' }).click();
  await a.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor();
});

await step('alice signs up with the code from the server log', async () => {
  await signUp(a, alice);
  await axeCheck(a, 'home (empty)');
  const cookies = await a.evaluate(() => document.cookie);
  assert(!cookies.includes('chirp_session'), 'the session cookie is not readable by scripts');
  const [cookie] = (await a.context().cookies()).filter((c) => c.name === 'chirp_session');
  assert(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', 'an HttpOnly, SameSite=Strict cookie');
});

await step('bob signs up: a taken username and a wrong code are explained, then it works', async () => {
  await b.goto(BASE + '/signup');
  await heading(b, 'Create your account');
  await axeCheck(b, 'signup');
  await b.getByLabel('Email', { exact: true }).fill(bob.email);
  await b.getByLabel('Username', { exact: true }).fill('ALICE');
  await b.getByLabel('Name', { exact: true }).fill(bob.name);
  await b.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await b.getByRole('button', { name: 'Sign up' }).click();
  await b.getByRole('alert').filter({ hasText: 'That username is taken' }).waitFor();
  await b.getByLabel('Password', { exact: true }).fill('short');
  await b.getByLabel('Username', { exact: true }).fill('bob');
  await b.getByRole('button', { name: 'Sign up' }).click();
  await b.locator('#signup-password-error').waitFor();
  await signUp(b, bob, { wrongCodeFirst: true });
});

let aliceToken;
await step('alice writes tweets with an image and with a video; the counter counts; bad files are refused in place', async () => {
  const text = a.getByLabel('What is happening?');
  await text.fill('x'.repeat(281));
  await a.locator('#compose-count').filter({ hasText: '-1' }).waitFor();
  assert(await a.getByRole('button', { name: 'Tweet', exact: true }).isDisabled(), 'over 280 cannot be sent');

  await text.fill('not really a picture');
  await a.locator('#compose-files').setInputFiles(fixture('not-an-image.png'));
  await a.getByRole('button', { name: 'Tweet', exact: true }).click();
  await a.getByRole('alert').filter({ hasText: 'not supported' }).waitFor();
  await a.getByRole('button', { name: /^Remove / }).click();

  await text.fill('Hello from the looking glass 🪞');
  await a.locator('#compose-count').filter({ hasText: String(280 - [...'Hello from the looking glass 🪞'].length) }).waitFor();
  await a.locator('#compose-files').setInputFiles(fixture('image.png'));
  await a.getByRole('img', { name: 'Attached image 1' }).waitFor();
  await a.getByLabel('Description of image.png').fill('A test card');
  await a.getByRole('button', { name: 'Tweet', exact: true }).click();
  const tweet = a.locator('article.tweet').filter({ hasText: 'Hello from the looking glass' });
  await tweet.locator('.media-grid img').waitFor();
  const thumb = await tweet.locator('.media-grid img').getAttribute('src');
  assert(thumb && thumb.includes('/media/'), `a stored thumbnail: ${thumb}`);

  await tweet.getByRole('button', { name: /^Open image/ }).click();
  const full = a.locator('dialog.lightbox img');
  await full.waitFor();
  assert(await full.evaluate((img) => img.complete && img.naturalWidth > 0), 'the full image loads');
  await a.keyboard.press('Escape');
  await full.waitFor({ state: 'detached' });

  await text.fill('A short film');
  await a.locator('#compose-files').setInputFiles(fixture('video.mp4'));
  await a.locator('.previews video').waitFor();
  await a.getByRole('button', { name: 'Tweet', exact: true }).click();
  const video = a.locator('article.tweet').filter({ hasText: 'A short film' }).locator('video');
  await video.waitFor();
  assert((await video.getAttribute('src')).includes('/media/'));
  assert.equal(await video.getAttribute('controls'), '');
  aliceToken = await apiLogin('alice');
});

await step('bob finds alice by search (the query in the URL) and follows her', async () => {
  await b.getByRole('link', { name: 'Search', exact: true }).click();
  await heading(b, 'Search');
  await b.getByLabel('Search chirp').fill('alic');
  await b.getByRole('button', { name: 'Search', exact: true }).click();
  await b.getByRole('link', { name: 'People', exact: true }).click();
  await b.waitForURL(/\/search\?q=alic&type=users$/);
  await b.reload();
  await b.getByRole('link', { name: 'Alice Liddell', exact: true }).waitFor();
  await axeCheck(b, 'search (people)');
  await b.goto(BASE + '/search?q=%22looking+glass%22&type=tweets');
  await b.locator('article.tweet').filter({ hasText: 'Hello from the looking glass' }).waitFor();
  await b.goBack();
  await b.getByRole('link', { name: 'Alice Liddell', exact: true }).click();
  await b.waitForURL(BASE + '/@alice');
  await heading(b, 'Alice Liddell');
  await b.getByRole('button', { name: 'Follow @alice' }).click();
  await b.getByRole('button', { name: 'Unfollow @alice' }).waitFor();
  await b.getByText('1 Follower').waitFor();
  await axeCheck(b, 'profile');
  await b.getByRole('link', { name: /^Followers/ }).click();
  await b.waitForURL(BASE + '/@alice/followers');
  await b.getByRole('link', { name: 'Bob Marley', exact: true }).waitFor();
  await axeCheck(b, 'followers');
});

await step('bob likes alice\'s tweet (optimistically); alice, on an open page, sees it arrive live', async () => {
  await a.getByRole('link', { name: 'Notifications', exact: true }).click();
  await heading(a, 'Notifications');
  await a.getByText('No notifications yet').waitFor();
  await axeCheck(a, 'notifications');

  const views = [];
  b.on('request', (r) => { if (r.url().endsWith('/views')) views.push(r.url()); });
  await b.goto(BASE + '/');  // a fresh page load: every tweet shown counts a view again
  await heading(b, 'Home');
  const tweet = b.locator('article.tweet').filter({ hasText: 'Hello from the looking glass' });
  const like = tweet.getByRole('button', { name: /^Like, 0 likes/ });
  await like.click();
  await tweet.getByRole('button', { name: /^Unlike, 1 like/ }).waitFor({ timeout: 1000 });
  await tweet.locator('.view-count').filter({ hasText: /^[1-9]/ }).waitFor();

  const started = Date.now();
  await a.locator('.notification.unread').filter({ hasText: 'liked your tweet' }).waitFor({ timeout: 5000 });
  await a.locator('.nav .badge').filter({ hasText: '1' }).waitFor();
  console.log(`      notification on alice's open page ${Date.now() - started} ms after bob's like was shown`);
  await a.getByRole('button', { name: 'Mark all as read' }).click();
  await a.locator('.nav .badge').waitFor({ state: 'detached' });

  // Each tweet shown counted one view, once per page load.
  await b.waitForTimeout(300);
  assert.equal(new Set(views).size, views.length, `one view per tweet: ${views.join(', ')}`);
  assert(views.length >= 2, `views counted for the tweets shown: ${views.length}`);
});

await step('infinite scroll reaches tweets beyond the first page; new tweets are announced without moving the reader', async () => {
  for (let i = 1; i <= 45; i++) await apiTweet(aliceToken, `Numbered tweet ${i}`);
  await b.goto(BASE + '/');
  await b.locator('article.tweet').first().waitFor();
  assert.equal(await b.locator('article.tweet').count(), 20, 'one page at first');
  for (let i = 0; i < 20 && !(await b.getByText('Numbered tweet 1', { exact: true }).count()); i++) {
    await b.mouse.wheel(0, 4000);
    await b.waitForTimeout(150);
  }
  await b.getByText('Numbered tweet 1', { exact: true }).waitFor();
  assert.equal(await b.locator('article.tweet').count(), 47);

  await b.evaluate(() => window.scrollTo(0, 1500));
  const before = await b.evaluate(() => window.scrollY);
  await apiTweet(aliceToken, 'Breaking news from alice');
  const banner = b.getByRole('button', { name: 'Show 1 new tweet' });
  await banner.waitFor({ timeout: 8000 });
  assert.equal(await b.evaluate(() => window.scrollY), before, 'the reading position is kept');
  assert.equal(await b.getByText('Breaking news from alice').count(), 0, 'not inserted until asked');
  await banner.click();
  await b.locator('article.tweet').first().filter({ hasText: 'Breaking news from alice' }).waitFor();
  await axeCheck(b, 'home (full)');
});

// PATCH /me and PUT /me/avatar come with the profile work (API.md); a server
// without them says so in its OpenAPI document, and this journey says SKIP.
const openapi = await (await fetch(BASE + '/api/v1/openapi.json')).json();
const hasProfiles = Boolean(openapi.paths['/api/v1/me/avatar']);
if (!hasProfiles) console.log('SKIP  a profile edit with an avatar: this server has no PUT /api/v1/me/avatar');
if (hasProfiles) await step('a profile edit with an avatar shows up on the tweets', async () => {
  await a.getByRole('link', { name: 'Settings', exact: true }).click();
  await heading(a, 'Edit profile');
  await axeCheck(a, 'settings');
  await a.getByLabel('Name', { exact: true }).fill('Alice in Wonderland');
  await a.getByLabel('Bio', { exact: true }).fill('Curiouser and curiouser.');
  await a.getByRole('button', { name: 'Save' }).click();
  await a.getByRole('status').filter({ hasText: 'Profile saved.' }).waitFor();
  await a.locator('#avatar-file').setInputFiles(fixture('image.png'));
  await a.getByRole('status').filter({ hasText: 'Avatar updated.' }).waitFor();
  await a.goto(BASE + '/@alice');
  await heading(a, 'Alice in Wonderland');
  await a.getByText('Curiouser and curiouser.').waitFor();
  const avatar = a.locator('article.tweet img.avatar').first();
  await avatar.waitFor();
  assert((await avatar.getAttribute('src')).includes('/media/'));
  assert(await avatar.evaluate((img) => img.complete && img.naturalWidth > 0), 'the avatar loads');
});

// The images on screen (avatars, thumbnails, previews) have loaded: the page is
// drawn before they come, and a screenshot taken at once would show gaps.
async function imagesShown(p) {
  await p.waitForFunction(() => [...document.images]
    .filter((i) => { const r = i.getBoundingClientRect(); return r.width > 0 && r.bottom > 0 && r.top < innerHeight; })
    .every((i) => i.complete), null, { timeout: 5000 });
}

await step('screenshots: timeline, profile and composer at phone and desktop widths', async () => {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const form = new FormData();
  form.append('content', "Tea party at the March Hare's. Everyone is invited.");
  form.append('media', new Blob([fs.readFileSync(fixture('image2.png'))], { type: 'image/png' }), 'bars.png');
  form.append('media', new Blob([fs.readFileSync(fixture('image.png'))], { type: 'image/png' }), 'card.png');
  const posted = await fetch(BASE + '/api/v1/tweet', { method: 'POST', headers: { authorization: `Bearer ${aliceToken}` }, body: form });
  assert.equal(posted.status, 201);
  const storageState = await b.context().storageState();
  const aliceState = await a.context().storageState();
  for (const [label, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const p = await newPage({ viewport, storageState });
    await p.goto(BASE + '/');
    await p.locator('article.tweet').first().waitFor();
    await p.evaluate(() => document.activeElement && document.activeElement.blur());
    await imagesShown(p);
    await p.screenshot({ path: path.join(SCREENSHOTS, `timeline-${label}.png`) });
    await p.goto(BASE + '/@alice');
    await heading(p, hasProfiles ? 'Alice in Wonderland' : 'Alice Liddell');
    await p.locator('article.tweet').first().waitFor();
    await imagesShown(p);
    await p.screenshot({ path: path.join(SCREENSHOTS, `profile-${label}.png`) });
    await p.context().close();

    const c = await newPage({ viewport, storageState: aliceState });
    await c.goto(BASE + '/');
    await c.getByLabel('What is happening?').fill('Down the rabbit hole, with pictures.');
    await c.locator('#compose-files').setInputFiles([fixture('image.png'), fixture('image2.png')]);
    await c.getByRole('img', { name: 'Attached image 2' }).waitFor();
    await imagesShown(c);
    await c.screenshot({ path: path.join(SCREENSHOTS, `composer-${label}.png`) });
    await c.context().close();
  }
  const dark = await newPage({ viewport: DESKTOP, storageState, colorScheme: 'dark' });
  await dark.goto(BASE + '/');
  await dark.locator('article.tweet').first().waitFor();
  await axeCheck(dark, 'home (dark)');
  await imagesShown(dark);
  await dark.screenshot({ path: path.join(SCREENSHOTS, 'timeline-desktop-dark.png') });
  await dark.context().close();
});

await step('first load of / is under 100 KB compressed; the home timeline\'s first page is on screen quickly', async () => {
  const storageState = await b.context().storageState();
  const runs = [];
  for (let i = 0; i < 7; i++) {
    const p = await newPage({ storageState });
    await p.goto(BASE + '/');
    await firstPageMark(p);
    await p.locator('article.tweet').first().waitFor();
    runs.push(await p.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const assets = performance.getEntriesByType('resource').filter((r) => new URL(r.name).pathname.startsWith('/app/'));
      const mark = performance.getEntriesByName('feed-first-page')[0];
      return {
        bytes: nav.transferSize + assets.reduce((n, r) => n + r.transferSize, 0),
        decoded: nav.decodedBodySize + assets.reduce((n, r) => n + r.decodedBodySize, 0),
        files: assets.length + 1,
        firstPageMs: mark.startTime,
        domContentLoadedMs: nav.domContentLoadedEventEnd,
      };
    }));
    await p.context().close();
  }
  const median = (xs) => xs.slice().sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const result = {
    bytes: median(runs.map((r) => r.bytes)),
    decoded: median(runs.map((r) => r.decoded)),
    files: runs[0].files,
    firstPageMsMedian: Math.round(median(runs.map((r) => r.firstPageMs))),
    firstPageMsMax: Math.round(Math.max(...runs.map((r) => r.firstPageMs))),
    domContentLoadedMsMedian: Math.round(median(runs.map((r) => r.domContentLoadedMs))),
    runs: runs.length,
  };
  console.log('      ' + JSON.stringify(result));
  if (METRICS_FILE) fs.writeFileSync(METRICS_FILE, JSON.stringify(result, null, 2) + '\n');
  assert(result.bytes < 100 * 1024, `first load ${result.bytes} bytes`);
  // The budget is 300 ms (docs/BENCHMARKS.md has the measured figures); the
  // check here is looser so that a debug build on a busy CI machine passes.
  assert(result.firstPageMsMedian < Number(process.env.FIRST_PAGE_BUDGET_MS || 1000), `first page at ${result.firstPageMsMedian} ms`);
});

await step('logout ends the session', async () => {
  await b.goto(BASE + '/settings');
  await heading(b, 'Edit profile');
  await b.getByRole('button', { name: 'Log out' }).first().click();
  await heading(b, 'Log in to chirp');
  const status = await b.evaluate(() => fetch('/api/v1/me').then((r) => r.status));
  assert.equal(status, 401);
  await b.goto(BASE + '/');
  await heading(b, 'Log in to chirp');
});

await step('no CSP violations or script errors on any page', async () => {
  assert.deepEqual(problems, []);
});

await browser.close();
if (failures) {
  console.log(`${failures} journey(s) failed`);
  process.exit(1);
}
console.log('all journeys passed');
