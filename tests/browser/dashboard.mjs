// The dashboard in a real browser: Debian's headless Chromium driven by playwright-core.
//
// Logs in, walks every main page through the navigation, opens a rejected delivery
// and reads its diagnosis, opens a conversation (a message, the 24-hour window, the
// inline image), downloads a media file through the page's link and compares its
// bytes, checks every same-origin link of the pages it saw, logs out and checks that
// a protected page then sends it to /login. Any console error, page error, failed
// request, CSP violation (console or `securitypolicyviolation` event) or broken
// link fails the run. Full-page screenshots of each main page go to the artifacts
// directory.
//
// Configuration (environment):
//   DASH_URL         base URL of a running wagate, e.g. http://127.0.0.1:8080 (required)
//   DASH_PASSWORD    the admin password (required)
//   DASH_ARTIFACTS   directory for screenshots (default: ./browser-artifacts)
//   DASH_CONTACT     a contact whose conversation is opened (default: 16505551234)
//   DASH_TEXT        a message text expected in that conversation
//   DASH_DIAGNOSIS   a text expected in the first rejected delivery's diagnosis
//   DASH_MEDIA_FILE  a file whose bytes the first stored media download must equal
//   CHROMIUM         the browser (default: /usr/bin/chromium)
//
// Exit status: 0 when everything held, 1 with the failures listed otherwise.

import { chromium } from 'playwright-core';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const env = process.env;
const base = (env.DASH_URL || '').replace(/\/$/, '');
const password = env.DASH_PASSWORD || '';
if (!base || !password) {
  console.error('usage: DASH_URL=http://127.0.0.1:8080 DASH_PASSWORD=... [DASH_ARTIFACTS=dir] node dashboard.mjs');
  process.exit(2);
}
const artifacts = env.DASH_ARTIFACTS || 'browser-artifacts';
const contact = env.DASH_CONTACT || '16505551234';
mkdirSync(artifacts, { recursive: true });

const problems = [];
const problem = (what) => {
  problems.push(what);
  console.error(`FAIL: ${what}`);
};
const step = (what) => console.log(`- ${what}`);

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // The background-networking flags keep Chromium from calling Google's services,
  // which a closed network refuses (noise, and slow starts).
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
page.setDefaultTimeout(15_000);

// What the browser reports, with the address of the document it came from.
let where = 'start';
page.on('console', (m) => {
  const text = m.text();
  if (m.type() === 'error' || (m.type() === 'warning' && /content.security.policy/i.test(text))) {
    problem(`console ${m.type()} at ${m.location()?.url || page.url()}: ${text}`);
  }
});
page.on('pageerror', (e) => problem(`page error at ${page.url()}: ${e.message}`));
page.on('requestfailed', (r) => {
  // A download's navigation is "aborted" by design.
  const failure = r.failure()?.errorText || '';
  if (!failure.includes('ERR_ABORTED') || !r.url().includes('/content')) {
    problem(`request failed at ${page.url()}: ${r.url()} ${failure}`);
  }
});
page.on('response', (r) => {
  if (r.status() >= 400) problem(`HTTP ${r.status()} for ${r.url()} (at ${page.url()})`);
});
// Reported from inside the page; the init script runs before any of the page's own.
await page.exposeBinding('__reportCspViolation', (_source, v) => {
  problem(`CSP violation at ${v.document}: ${v.directive} blocked ${v.blocked || '(inline)'} (${v.source}:${v.line})`);
});
await page.addInitScript(() => {
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__reportCspViolation({
      document: e.documentURI,
      directive: e.violatedDirective,
      blocked: e.blockedURI,
      source: e.sourceFile,
      line: e.lineNumber,
    });
  });
});

const seenLinks = new Set();
async function collectLinks() {
  const hrefs = await page.$$eval('a[href]', (as) => as.map((a) => a.href));
  for (const h of hrefs) {
    if (h.startsWith(base + '/')) seenLinks.add(h.split('#')[0]);
    else problem(`link off the dashboard on ${where}: ${h}`);
  }
}

// Checks the page, keeps its screenshot and links.
async function look(name, { h1, texts = [] } = {}) {
  where = `${name} (${page.url()})`;
  await page.waitForLoadState('load');
  const heading = (await page.locator('h1').first().textContent())?.trim() || '';
  if (h1 && !heading.includes(h1)) problem(`${name}: heading "${heading}", expected "${h1}"`);
  for (const t of texts) {
    if (!(await page.getByText(t, { exact: false }).first().isVisible().catch(() => false))) {
      problem(`${name}: "${t}" is not visible`);
    }
  }
  // The stylesheet applied (same-origin, allowed by the CSP): the top bar is dark.
  const bg = await page.evaluate(() => {
    const top = document.querySelector('header.top, body.narrow');
    return top ? getComputedStyle(top).backgroundColor : '';
  });
  if (!bg || bg === 'rgba(0, 0, 0, 0)') problem(`${name}: the stylesheet did not apply`);
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
  await collectLinks();
  step(`${name}: ${heading}`);
}

// Follows a link of the top navigation, as a person would.
async function nav(label) {
  const a = page.locator('header.top nav a', { hasText: label }).first();
  const href = await a.getAttribute('href');
  await Promise.all([page.waitForURL(new URL(href, base).href), a.click()]);
}

try {
  // Logged out, the overview sends the browser to the login page.
  where = 'login';
  await page.goto(`${base}/`);
  if (!page.url().endsWith('/login')) problem(`/ without a session went to ${page.url()}, not /login`);
  await look('01-login', { h1: 'wagate' });
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(`${base}/`), page.click('form.login button[type=submit]')]);
  await look('02-overview', { h1: 'Overview' });

  await nav('Deliveries');
  await look('03-deliveries', { h1: 'Deliveries' });
  // The filter form, as a person would use it.
  await page.selectOption('select[name=verdict]', 'rejected');
  await Promise.all([page.waitForURL(/verdict=rejected/), page.click('form.filters button:text("Show")')]);
  await look('04-deliveries-rejected', { h1: 'Deliveries' });
  const first = page.locator('tbody tr td:first-child a').first();
  if ((await first.count()) === 0) {
    problem('no rejected delivery listed');
  } else {
    await Promise.all([page.waitForURL(/\/dashboard\/deliveries\/\d+$/), first.click()]);
    const texts = ['Diagnosis'];
    if (env.DASH_DIAGNOSIS) texts.push(env.DASH_DIAGNOSIS);
    await look('05-delivery-rejected', { h1: 'Delivery #', texts });
    if ((await page.locator('.finding').count()) === 0) problem('the rejected delivery shows no diagnosis finding');
    if ((await page.locator('h1 .bad').count()) === 0) problem('the delivery is not marked as rejected');
  }

  await nav('Messages');
  await look('06-messages', { h1: 'Messages' });
  const link = page.locator(`tbody a[href^="/dashboard/conversation?"]`, { hasText: contact }).first();
  if ((await link.count()) === 0) {
    problem(`no conversation link for ${contact} on the messages page`);
    await page.goto(`${base}/dashboard/conversation?contact=${encodeURIComponent(contact)}`);
  } else {
    await Promise.all([page.waitForURL(/\/dashboard\/conversation\?/), link.click()]);
  }
  const texts = ['24-hour customer service window'];
  if (env.DASH_TEXT) texts.push(env.DASH_TEXT);
  await look('07-conversation', { h1: `Conversation with ${contact}`, texts });
  const win = (await page.locator('p', { hasText: '24-hour customer service window' }).first().textContent()) || '';
  if (!/window: (open: closes in|closed)/.test(win)) problem(`conversation: window info "${win.trim()}"`);
  // Inline images come through the authenticated media endpoint and really load.
  const images = await page.$$eval('.bubble img', (imgs) =>
    imgs.map((i) => ({ src: i.getAttribute('src'), loaded: i.complete && i.naturalWidth > 0 })));
  if (env.DASH_MEDIA_FILE && images.length === 0) problem('conversation: no inline image');
  for (const i of images) if (!i.loaded) problem(`conversation: image ${i.src} did not load`);
  step(`conversation: window "${win.trim()}", ${images.length} image(s) loaded`);

  await nav('Failed statuses');
  await look('08-statuses', { h1: 'Failed statuses' });
  await nav('Media');
  await look('09-media', { h1: 'Media' });
  const download = page.locator('tbody a', { hasText: 'Download' }).first();
  if ((await download.count()) === 0) {
    if (env.DASH_MEDIA_FILE) problem('media: no Download link (no stored media)');
  } else {
    where = 'media download';
    const [d] = await Promise.all([page.waitForEvent('download'), download.click()]);
    const path = await d.path();
    const got = readFileSync(path);
    const digest = createHash('sha256').update(got).digest('hex');
    step(`media: downloaded ${d.suggestedFilename()}, ${got.length} bytes, sha256 ${digest}`);
    if (env.DASH_MEDIA_FILE) {
      const want = readFileSync(env.DASH_MEDIA_FILE);
      if (!got.equals(want)) {
        problem(`media: download is ${got.length} bytes (sha256 ${digest}), expected ${want.length} bytes of ${env.DASH_MEDIA_FILE}`);
      }
    }
  }
  await nav('Account events');
  await look('10-events', { h1: 'Account events' });
  await nav('Settings');
  await look('11-settings', { h1: 'Settings' });
  if (await page.getByText(password).count()) problem('settings: the admin password is shown');

  // Every link seen leads somewhere (with the session, as a click would).
  where = 'link check';
  const links = [...seenLinks];
  for (const url of links) {
    const r = await context.request.get(url, { maxRedirects: 0 });
    if (r.status() !== 200) problem(`link ${url} answers ${r.status()}`);
  }
  step(`links: ${links.length} checked`);

  where = 'logout';
  await Promise.all([page.waitForURL(`${base}/login`), page.click('form.logout button')]);
  await page.goto(`${base}/dashboard/messages`);
  if (!page.url().endsWith('/login')) problem(`after logout /dashboard/messages showed ${page.url()}`);
  if ((await context.cookies()).some((c) => c.name === 'wagate_session' && c.value)) {
    problem('after logout the session cookie is still set');
  }
  step('logged out: protected pages go to /login');
} catch (e) {
  problem(`on ${where}: ${e.stack || e}`);
  await page.screenshot({ path: join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}

console.log(`screenshots: ${artifacts}`);
if (problems.length) {
  console.error(`${problems.length} problem(s): the FAIL lines above`);
  process.exit(1);
}
console.log('dashboard in Chromium: all good');
