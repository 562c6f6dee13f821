// Sign up, sign in, and joining a household from an invitation link.
import { api, ApiError } from '../api.js';
import { h } from '../util.js';

/** The minimum the server enforces for a password alone (NIST SP 800-63B-4). */
export const MIN_PASSWORD_CHARS = 15;
const MAX_PASSWORD_CHARS = 256;
const JOIN_KEY = 'pawpost.join';

/** A few of the most common passwords and patterns; the server checks a far longer list. */
const COMMON = [
  'password', 'passw0rd', 'qwerty', 'azerty', 'asdfgh', 'zxcvbn', '123456', '654321', 'abcdef',
  'letmein', 'iloveyou', 'welcome', 'monkey', 'dragon', 'football', 'baseball', 'sunshine',
  'princess', 'trustno1', 'admin', 'pawpost', 'cloudpets',
];

/**
 * What the password rules say about `password` so far.
 * @param {string} password
 * @param {string} email
 * @param {string} name
 * @returns {{ id: string, met: boolean, text: string }[]}
 */
export function passwordRules(password, email, name) {
  const chars = [...password].length;
  const lower = password.toLowerCase();
  const local = email.split('@')[0]?.toLowerCase() ?? '';
  const own =
    (local.length >= 3 && lower.includes(local)) ||
    (email.length >= 3 && lower.includes(email.toLowerCase())) ||
    name
      .toLowerCase()
      .split(/\s+/)
      .some((part) => part.length >= 3 && lower.includes(part));
  const squeezed = lower.replace(/[^a-z0-9]/g, '');
  const repeated = chars > 0 && (new Set(password).size < 5 || /^(.{1,6})\1+$/.test(password));
  const common = COMMON.some((c) => squeezed.includes(c)) || repeated;
  return [
    {
      id: 'length',
      met: chars >= MIN_PASSWORD_CHARS && chars <= MAX_PASSWORD_CHARS,
      text:
        chars > MAX_PASSWORD_CHARS
          ? `At most ${MAX_PASSWORD_CHARS} characters (it has ${chars}).`
          : `At least ${MIN_PASSWORD_CHARS} characters (${chars} so far).`,
    },
    { id: 'common', met: chars > 0 && !common, text: 'Not a common or breached password, keyboard pattern or repetition.' },
    { id: 'own', met: chars > 0 && !own, text: 'Not built from your email address or name.' },
  ];
}

/**
 * @param {string} id
 * @param {string} label
 * @param {Record<string, any>} attrs
 * @param {HTMLElement} [hint]
 */
function field(id, label, attrs, hint) {
  const input = h('input', { id, name: id, ...attrs, 'aria-describedby': hint ? `${id}-hint` : undefined });
  if (hint) hint.id = `${id}-hint`;
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), input, hint);
}

/**
 * Accepts the invitation this browser came with, if any, once signed in.
 * @param {import('../app.js').App} app
 * @returns {Promise<string | null>} the household joined
 */
export async function acceptPendingInvitation(app) {
  const token = sessionStorage.getItem(JOIN_KEY);
  if (!token || !app.account) return null;
  sessionStorage.removeItem(JOIN_KEY);
  const household = await api('POST', '/api/v1/invitations/accept', { token });
  history.replaceState(null, '', `/households/${household.id}`);
  return household.id;
}

/**
 * @param {import('../app.js').App} app
 * @param {'signin' | 'signup'} mode
 * @param {string} [intro]
 */
export function authView(app, mode, intro) {
  const signup = mode === 'signup';
  const error = h('p', { class: 'error', role: 'alert' });
  const ruleList = h('ul', { class: 'rules' });
  const ruleStatus = h('p', { class: 'visually-hidden', 'aria-live': 'polite' });
  const hint = h(
    'div',
    { class: 'hint' },
    h('p', { text: 'Use a long passphrase: a few unrelated words. No symbols, digits or capitals needed.' }),
    ruleList,
    ruleStatus,
  );
  const emailField = field('email', 'Email', { type: 'email', autocomplete: 'email', required: true });
  const nameField = signup
    ? field('display_name', 'Your name (as your family knows you)', { type: 'text', autocomplete: 'name', required: true, maxlength: '100' })
    : null;
  const passwordField = field(
    'password',
    'Password',
    { type: 'password', autocomplete: signup ? 'new-password' : 'current-password', required: true },
    signup ? hint : undefined,
  );
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      { class: 'card', novalidate: true },
      emailField,
      nameField,
      passwordField,
      h('button', { type: 'submit', class: 'primary', text: signup ? 'Create account' : 'Sign in' }),
      error,
    )
  );
  const get = (/** @type {string} */ name) => /** @type {HTMLInputElement} */ (form.elements.namedItem(name));

  let lastSummary = '';
  function updateRules() {
    const rules = passwordRules(get('password').value, get('email').value, signup ? get('display_name').value : '');
    ruleList.replaceChildren(
      ...rules.map((r) =>
        h('li', { class: r.met ? 'met' : 'unmet', dataset: { rule: r.id } }, h('span', { class: 'mark', 'aria-hidden': 'true', text: r.met ? '✓' : '✗' }), h('span', { class: 'visually-hidden', text: r.met ? 'Met: ' : 'Not met: ' }), r.text),
      ),
    );
    const unmet = rules.filter((r) => !r.met).length;
    const summary = unmet === 0 ? 'The password meets the rules.' : `${unmet} password rule${unmet > 1 ? 's' : ''} not met yet.`;
    if (summary !== lastSummary) ruleStatus.textContent = lastSummary = summary;
  }
  if (signup) {
    updateRules();
    for (const n of ['password', 'email', 'display_name']) get(n).addEventListener('input', updateRules);
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const button = /** @type {HTMLButtonElement} */ (form.querySelector('button[type=submit]'));
    button.disabled = true;
    const email = get('email').value.trim();
    const password = get('password').value;
    try {
      if (!email || !password || (signup && !get('display_name').value.trim())) {
        throw new Error('Please fill in every field.');
      }
      if (signup) {
        await api('POST', '/api/v1/accounts', { email, password, display_name: get('display_name').value.trim() });
      }
      const session = await api('POST', '/api/v1/sessions', { email, password });
      await app.signedIn(session);
      const joined = await acceptPendingInvitation(app);
      const next = new URLSearchParams(location.search).get('next');
      app.navigate(joined ? `/households/${joined}` : next && next.startsWith('/') && !next.startsWith('//') ? next : '/', true);
    } catch (err) {
      error.textContent = err instanceof Error ? err.message : String(err);
      if (err instanceof ApiError && err.code === 'password_rejected') get('password').focus();
    } finally {
      button.disabled = false;
    }
  });

  const switchLink = signup
    ? h('p', {}, 'Already have an account? ', h('a', { href: `/signin${location.search}`, 'data-link': true, text: 'Sign in' }))
    : h('p', {}, 'New to pawpost? ', h('a', { href: `/signup${location.search}`, 'data-link': true, text: 'Create an account' }));
  return h(
    'section',
    { class: 'auth' },
    h('h1', { text: signup ? 'Create your pawpost account' : 'Sign in to pawpost' }),
    intro ? h('p', { class: 'intro', text: intro }) : null,
    form,
    switchLink,
  );
}

/**
 * `/join#<token>`: keeps the token for after sign-in (it never goes to the server in a URL).
 * @param {import('../app.js').App} app
 */
export async function joinView(app) {
  const token = location.hash.slice(1);
  if (token) {
    sessionStorage.setItem(JOIN_KEY, decodeURIComponent(token));
    history.replaceState(null, '', '/join');
  }
  if (!sessionStorage.getItem(JOIN_KEY)) {
    return h('section', {}, h('h1', { text: 'Invitation link incomplete' }), h('p', { text: 'This link has no invitation in it. Ask the parent who invited you for a new link.' }));
  }
  if (app.account) {
    try {
      const id = await acceptPendingInvitation(app);
      if (id) {
        queueMicrotask(() => app.navigate(`/households/${id}`, true));
        return h('section', {}, h('h1', { text: 'Joining…' }));
      }
    } catch (e) {
      return h('section', {}, h('h1', { text: 'This invitation cannot be used' }), h('p', { class: 'error', role: 'alert', text: e instanceof Error ? e.message : String(e) }));
    }
  }
  const mode = new URLSearchParams(location.search).get('mode') === 'signin' ? 'signin' : 'signup';
  const view = authView(app, mode, 'You have been invited to a family on pawpost. Create an account (or sign in) to join; a parent will then approve you.');
  const link = view.querySelector('a[data-link]');
  if (link instanceof HTMLAnchorElement) link.href = mode === 'signup' ? '/join?mode=signin' : '/join';
  return view;
}
