// The app as a phone keeps it, in a real Chromium against a real server: the service worker
// takes over the page and keeps the app's own files, the app shell then comes from its
// cache (even with the server gone), while every request under /api/ goes to the network
// and nothing of the API is ever stored; after signing up, the app asks to keep its storage.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { makeVoiceWav, openBrowser, screenshot, signUp, startServer } from './harness.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let grandma;
let work = '';

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-install-story-'));
  grandma = await openBrowser(makeVoiceWav(work, 'Hello'));
  // Count the app's requests to keep its storage (and have the browser say it is not kept
  // yet, so that the app must ask).
  await grandma.context.addInitScript(() => {
    const w = /** @type {any} */ (window);
    w.persistAsked = 0;
    if (!navigator.storage) return;
    const persist = navigator.storage.persist.bind(navigator.storage);
    navigator.storage.persisted = async () => false;
    navigator.storage.persist = async () => {
      w.persistAsked += 1;
      return persist();
    };
  });
});

after(async () => {
  await grandma?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * Loads `path` and waits for the app to have drawn its page.
 * @param {import('playwright-core').Page} page
 * @param {string} path
 */
async function open(page, path) {
  await page.goto(`${server.url}${path}`);
  await page.locator('html[data-ready="true"]').waitFor();
}

/**
 * The URLs of the responses `page` receives while `action` runs, and whether the service
 * worker answered each.
 * @param {import('playwright-core').Page} page
 * @param {() => Promise<void>} action
 * @returns {Promise<Map<string, boolean>>} path (with query) → answered by the service worker
 */
async function responsesDuring(page, action) {
  /** @type {Map<string, boolean>} */
  const seen = new Map();
  /** @param {import('playwright-core').Response} r */
  const record = (r) => {
    const url = new URL(r.url());
    seen.set(url.pathname + url.search, r.fromServiceWorker());
  };
  page.on('response', record);
  try {
    await action();
  } finally {
    page.off('response', record);
  }
  return seen;
}

/**
 * Every URL the page's origin keeps in Cache Storage, by cache name.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<Record<string, string[]>>}
 */
function cached(page) {
  return page.evaluate(async () => {
    /** @type {Record<string, string[]>} */
    const all = {};
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      all[name] = (await cache.keys()).map((r) => new URL(r.url).pathname + new URL(r.url).search);
    }
    return all;
  });
}

test('the service worker takes over the page and keeps only the app files', async () => {
  const page = grandma.page;
  await open(page, '/');
  await page.getByRole('heading', { name: 'Sign in to pawpost' }).waitFor();
  const controlled = await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
      await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
    }
    return navigator.serviceWorker.controller?.scriptURL;
  });
  assert.equal(controlled, `${server.url}/sw.js`);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).persistAsked), 0, 'nobody signed in yet: nothing to keep');

  const caches = await cached(page);
  const names = Object.keys(caches);
  assert.equal(names.length, 1, `one cache: ${names}`);
  assert.match(names[0], /^pawpost-app-[0-9a-f]{16}$/);
  const files = caches[names[0]];
  for (const file of ['/index.html', '/js/app.js', '/js/crypto/keystore.js', '/css/app.css', '/manifest.webmanifest', '/icons/icon-192.png']) {
    assert.ok(files.includes(file), `${file} is not kept: ${files}`);
  }
  assert.ok(!files.some((f) => f.startsWith('/api/') || f === '/sw.js'), `${files}`);
  assert.deepEqual(grandma.errors, []);
});

test('after a reload the app shell comes from the cache and /api/ from the network', async () => {
  const page = grandma.page;
  const seen = await responsesDuring(page, () => open(page, '/signup'));
  await page.getByRole('heading', { name: 'Create your pawpost account' }).waitFor();
  assert.equal(seen.get('/signup'), true, `the page: ${[...seen]}`);
  assert.equal(seen.get('/js/app.js'), true, `the app's script: ${[...seen]}`);
  assert.equal(seen.get('/css/app.css'), true, `the style sheet: ${[...seen]}`);
  assert.equal(seen.get('/api/v1/sessions/current'), false, `the session check: ${[...seen]}`);

  // Signing up and the households page: every API request goes to the server.
  const api = await responsesDuring(page, async () => {
    await signUp(page, { email: 'grandma@example.com', name: 'Grandma Rosa' });
    await page.getByRole('heading', { name: 'Your households' }).waitFor();
  });
  const apiPaths = [...api.keys()].filter((p) => p.startsWith('/api/'));
  assert.ok(apiPaths.includes('/api/v1/accounts'), `sign-up reached the server: ${apiPaths}`);
  for (const p of apiPaths) assert.equal(api.get(p), false, `${p} was answered by the service worker`);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).persistAsked), 1, 'signed in: the app asks to keep its storage');

  // The same request twice gets the server's answer each time: signed in now, where the
  // first session check above was answered 401.
  const session = await page.evaluate(async () => {
    const r = await fetch('/api/v1/sessions/current');
    return { status: r.status, name: (await r.json()).account?.display_name };
  });
  assert.deepEqual(session, { status: 200, name: 'Grandma Rosa' });

  const kept = Object.values(await cached(page)).flat();
  assert.ok(!kept.some((f) => f.startsWith('/api/')), `an API answer was stored: ${kept}`);
  assert.deepEqual(grandma.errors, []);
  await screenshot(page, 'app-install-signed-in');
});

test('with the server gone the app still opens, and /api/ fails instead of being answered from a cache', async () => {
  const page = grandma.page;
  await server.stop();
  // The app reports the unreachable server in the console; that is expected here.
  await page.reload();
  await page.locator('html[data-ready="true"]').waitFor();
  await page.getByRole('heading', { name: 'Sign in to pawpost' }).waitFor();
  const api = await page.evaluate(async () => {
    try {
      const r = await fetch('/api/v1/sessions/current');
      return `answered ${r.status}`;
    } catch (e) {
      return e instanceof TypeError ? 'network error' : String(e);
    }
  });
  assert.equal(api, 'network error');
  // A file that is not one of the app's is not invented either.
  const other = await page.evaluate(async () => {
    try {
      return `answered ${(await fetch('/robots.txt')).status}`;
    } catch {
      return 'network error';
    }
  });
  assert.equal(other, 'network error');
});
