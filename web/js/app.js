// The family web app: routes, session, and the pages. Every server string is rendered as
// text (textContent via util.h), never as HTML.
import { api, ApiError, setCsrfToken } from './api.js';
import { ensureDevice } from './device.js';
import { startLive, stopLive } from './live.js';
import { h } from './util.js';
import { authView, joinView, acceptPendingInvitation, forgotView, resetView, verifyEmailView } from './views/auth.js';
import { householdsView } from './views/households.js';
import { householdView } from './views/household.js';
import { familyView } from './views/family.js';
import { recoveryView } from './views/recovery.js';
import { securityView } from './views/security.js';
import { LANGUAGES, lang, setLanguage, t } from './i18n.js';

/**
 * @typedef {{
 *   account: { id: string, email: string, display_name: string, email_verified?: boolean, has_password?: boolean } | null,
 *   device: import('./device.js').ThisDevice | null,
 *   navigate: (path: string, replace?: boolean) => void,
 *   signedIn: (session: any) => Promise<void>,
 *   signedOut: (note?: string) => void,
 *   flash: (note: string) => void,
 *   cleanup: (() => void)[],
 * }} App
 */

const root = /** @type {HTMLElement} */ (document.getElementById('app'));

/** @type {App} */
const app = {
  account: null,
  device: null,
  navigate,
  signedIn,
  signedOut,
  flash,
  cleanup: [],
};

/** A note shown at the top of the next page (what just happened). */
let pendingNote = '';

/** @param {string} note */
function flash(note) {
  pendingNote = note;
}

/**
 * Forgets the session here (the server already ended it) and goes to sign-in.
 * @param {string} [note]
 */
function signedOut(note) {
  setCsrfToken('');
  stopLive();
  app.account = null;
  app.device = null;
  if (note) flash(note);
  navigate('/signin');
}

/**
 * @param {string} path
 * @param {boolean} [replace]
 */
function navigate(path, replace = false) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

/**
 * Called with the answer of sign-in (or of the current session after a reload).
 * @param {{ csrf_token: string, account: any }} session
 */
async function signedIn(session) {
  setCsrfToken(session.csrf_token);
  app.account = session.account;
  app.device = await ensureDevice(session.account.id);
  keepStorage();
  startLive();
}

/**
 * Asks the browser to keep this site's storage, where this device's keys live (Safari
 * otherwise deletes it after 7 days without a visit). A refusal changes nothing on screen.
 */
function keepStorage() {
  if (!navigator.storage?.persist) return;
  navigator.storage
    .persisted()
    .then((kept) => kept || navigator.storage.persist())
    .catch((e) => console.warn('could not ask to keep storage', e));
}

/** Lets the app open from the home screen: the service worker keeps the app's own files. */
function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js').catch((e) => console.warn('service worker not registered', e));
}

async function signOut() {
  try {
    await api('DELETE', '/api/v1/sessions/current');
  } catch {
    // Signed out on the server already, or unreachable: forget locally either way.
  }
  signedOut();
}

function header() {
  const nav = app.account
    ? h(
        'nav',
        { 'aria-label': t('Main') },
        h('a', { href: '/', 'data-link': true, text: t('Households') }),
        h('a', { href: '/security', 'data-link': true, text: t('Security') }),
        h('span', { class: 'who', text: app.account.display_name }),
        h('button', { type: 'button', class: 'link', onclick: signOut, text: t('Sign out') }),
      )
    : h(
        'nav',
        { 'aria-label': t('Main') },
        h('a', { href: '/signin', 'data-link': true, text: t('Sign in') }),
        h('a', { href: '/signup', 'data-link': true, text: t('Create account') }),
      );
  return h('header', { class: 'top' }, h('a', { href: '/', 'data-link': true, class: 'brand', text: 'pawpost' }), nav);
}

/** The foot of every page: the language switch, each language named in its own words. */
function footer() {
  const select = /** @type {HTMLSelectElement} */ (
    h(
      'select',
      { id: 'language' },
      ...Object.entries(LANGUAGES).map(([code, name]) => h('option', { value: code, lang: code, text: name, selected: code === lang })),
    )
  );
  select.addEventListener('change', () => setLanguage(/** @type {import('./i18n.js').Language} */ (select.value)));
  return h('footer', { class: 'bottom' }, h('label', { for: 'language', text: t('Language') }), select);
}

/** The page's own words (index.html is English until the app speaks). */
function translateShell() {
  const skip = document.querySelector('a.skip');
  if (skip) skip.textContent = t('Skip to content');
  document.querySelector('meta[name="description"]')?.setAttribute('content', t("Voice messages between your family and your child's toy, encrypted on your device before they leave it."));
}

/** @returns {Promise<HTMLElement>} */
async function route() {
  const path = location.pathname.replace(/\/+$/, '') || '/';
  if (path === '/join') return joinView(app);
  if (path === '/reset') return resetView(app);
  if (path === '/verify-email') return verifyEmailView(app);
  if (path === '/forgot') return forgotView();
  if (!app.account) {
    if (path === '/signup') return authView(app, 'signup');
    if (path !== '/signin') history.replaceState(null, '', `/signin?next=${encodeURIComponent(path)}`);
    return authView(app, 'signin');
  }
  if (path === '/signin' || path === '/signup') {
    const next = new URLSearchParams(location.search).get('next');
    history.replaceState(null, '', next && next.startsWith('/') && !next.startsWith('//') ? next : '/');
    return route();
  }
  if (path === '/') return householdsView(app);
  if (path === '/security') return securityView(app);
  let m = /^\/households\/([0-9a-f-]{36})$/.exec(path);
  if (m) return householdView(app, m[1]);
  m = /^\/households\/([0-9a-f-]{36})\/family$/.exec(path);
  if (m) return familyView(app, m[1]);
  m = /^\/households\/([0-9a-f-]{36})\/recovery$/.exec(path);
  if (m) return recoveryView(app, m[1]);
  return h('section', {}, h('h1', { tabindex: '-1', text: t('Page not found') }), h('p', {}, h('a', { href: '/', 'data-link': true, text: t('Back to your households') })));
}

let renderSeq = 0;
async function render() {
  const seq = ++renderSeq;
  for (const f of app.cleanup.splice(0)) f();
  root.setAttribute('aria-busy', 'true');
  let view;
  try {
    view = await route();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      app.account = null;
      app.device = null;
      if (seq === renderSeq) navigate('/signin', true);
      return;
    }
    view = h(
      'section',
      {},
      h('h1', { tabindex: '-1', text: t('Something went wrong') }),
      h('p', { class: 'error', role: 'alert', text: e instanceof Error ? e.message : String(e) }),
      h('p', {}, h('a', { href: '/', 'data-link': true, text: t('Back to your households') })),
    );
  }
  if (seq !== renderSeq) return;
  const note = pendingNote ? h('p', { class: 'notice flash', role: 'status', text: pendingNote }) : null;
  pendingNote = '';
  root.replaceChildren(header(), h('div', { class: 'view' }, note, view), footer());
  root.removeAttribute('aria-busy');
  document.documentElement.dataset.route = location.pathname;
  const heading = root.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    document.title = `${heading.textContent} · pawpost`;
    if (document.activeElement === document.body || !root.contains(document.activeElement)) heading.focus();
  }
}

document.addEventListener('click', (e) => {
  const a = /** @type {HTMLElement} */ (e.target).closest?.('a[data-link]');
  if (!a || !(a instanceof HTMLAnchorElement)) return;
  if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.pathname + a.search);
});
window.addEventListener('popstate', render);

async function boot() {
  try {
    const session = await api('GET', '/api/v1/sessions/current');
    await signedIn(session);
    await acceptPendingInvitation(app);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) console.error(e);
  }
  await render();
  document.documentElement.dataset.ready = 'true';
}

translateShell();
registerServiceWorker();
boot();
