// The app's service worker: it keeps the app's own files (HTML, JS, CSS, icons, manifest)
// so that the app opens from the home screen, and stays out of everything else. A request
// under /api/, one that is not a GET, one to another origin or for a file that is not the
// app's goes to the network untouched: nothing but the files listed in BUILD is ever
// stored, so no key, session or answer of the API is kept here.

// The server rewrites this line when it serves this file (crates/pawpost-server/src/web.rs):
// `files` lists the app's files and `version` is a hash of their contents, so a release
// that changes any of them installs a fresh cache. Served as it is, nothing is kept.
const BUILD = { version: 'unbuilt', files: [] };

const PREFIX = 'pawpost-app-';
const CACHE = `${PREFIX}${BUILD.version}`;
/** @type {Set<string>} */
const FILES = new Set(BUILD.files);
/** What an app route (a path whose last part has no dot, such as /households/…) shows. */
const SHELL = '/index.html';

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // 'reload': the files as the server has them now, not as the HTTP cache kept them.
      await cache.addAll([...FILES].map((file) => new Request(file, { cache: 'reload' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === '/api' || url.pathname.startsWith('/api/')) return;
  const last = url.pathname.slice(url.pathname.lastIndexOf('/') + 1);
  let key;
  if (request.mode === 'navigate' && !last.includes('.')) key = SHELL;
  else if (FILES.has(url.pathname) && !url.search) key = url.pathname;
  else return;
  if (!FILES.has(key)) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      return (await cache.match(key)) ?? fetch(request);
    })(),
  );
});
