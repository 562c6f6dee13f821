// Sign up, sign in, joining a household from an invitation link, choosing a new
// password with a link sent by email when the old one is forgotten, and confirming the
// email address with the link sent to it at sign-up.
import { api, ApiError } from '../api.js';
import { passkeyChoice } from '../passkeys.js';
import { h } from '../util.js';
import { fieldFor, passwordRejectedWords } from '../words.js';
import { t } from '../i18n.js';

export { passwordRejectedWords };

/** The minimum the server enforces for a password alone (NIST SP 800-63B-4). */
export const MIN_PASSWORD_CHARS = 15;
const MAX_PASSWORD_CHARS = 256;
const JOIN_KEY = 'pawpost.join';
const RESET_KEY = 'pawpost.reset';
/** How long an emailed link to choose a new password works (the server's PASSWORD_RESET_TTL). */
const RESET_LINK_MINUTES = 30;
const VERIFY_KEY = 'pawpost.verify-email';
/** How long an emailed link to confirm the address works (the server's EMAIL_VERIFICATION_TTL). */
const VERIFY_LINK_DAYS = 7;

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
          ? t('At most {MAX_PASSWORD_CHARS} characters (it has {chars}).', { MAX_PASSWORD_CHARS, chars })
          : t('At least {MIN_PASSWORD_CHARS} characters ({chars} so far).', { MIN_PASSWORD_CHARS, chars }),
    },
    { id: 'common', met: chars > 0 && !common, text: t('Not a common or breached password, keyboard pattern or repetition.') },
    { id: 'own', met: chars > 0 && !own, text: t('Not built from your email address or name.') },
  ];
}

/**
 * A labelled input with its own error line beside it (announced when it changes).
 * @param {string} id
 * @param {string} label
 * @param {Record<string, any>} attrs
 * @param {HTMLElement} [hint]
 * @returns {{ wrap: HTMLElement, input: HTMLInputElement, error: HTMLElement, show: (text: string) => void }}
 */
export function fieldWithError(id, label, attrs, hint) {
  const error = h('p', { class: 'error field-error', id: `${id}-error`, role: 'alert' });
  if (hint) hint.id = `${id}-hint`;
  const input = /** @type {HTMLInputElement} */ (
    h('input', { id, name: id, ...attrs, 'aria-describedby': hint ? `${id}-hint ${id}-error` : `${id}-error` })
  );
  const wrap = h('div', { class: 'field' }, h('label', { for: id, text: label }), input, hint, error);
  /** @param {string} text */
  const show = (text) => {
    error.textContent = text;
    if (text) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  };
  return { wrap, input, error, show };
}

/**
 * The password rules as a live checklist under a new-password field; call `update` once
 * the field exists, and on every input.
 * @param {() => [string, string, string]} values the password, the email address and the name
 * @returns {{ hint: HTMLElement, update: () => void }}
 */
export function passwordRulesHint(values) {
  const list = h('ul', { class: 'rules' });
  const status = h('p', { class: 'visually-hidden', 'aria-live': 'polite' });
  const hint = h(
    'div',
    { class: 'hint' },
    h('p', { text: t('Use a long passphrase: a few unrelated words. No symbols, digits or capitals needed.') }),
    list,
    status,
  );
  let last = '';
  const update = () => {
    const rules = passwordRules(...values());
    list.replaceChildren(
      ...rules.map((r) =>
        h('li', { class: r.met ? 'met' : 'unmet', dataset: { rule: r.id } }, h('span', { class: 'mark', 'aria-hidden': 'true', text: r.met ? '✓' : '✗' }), h('span', { class: 'visually-hidden', text: r.met ? t('Met: ') : t('Not met: ') }), r.text),
      ),
    );
    const unmet = rules.filter((r) => !r.met).length;
    const summary = unmet === 0 ? t('The password meets the rules.') : t('{count} password rules not met yet.', { count: unmet });
    if (summary !== last) status.textContent = last = summary;
  };
  return { hint, update };
}

/**
 * "Wait about 12 minutes", from a Retry-After in seconds.
 * @param {number | null} seconds
 */
export function waitWords(seconds) {
  if (seconds === null) return t('Wait a while');
  if (seconds < 90) return t('Wait {count} seconds', { count: Math.max(1, seconds) });
  const minutes = Math.ceil(seconds / 60);
  return t('Wait about {minutes} minutes', { minutes });
}

/**
 * What to say when pawpost could not be reached or is busy; null for other errors.
 * @param {unknown} err
 */
export function troubleWords(err) {
  if (!(err instanceof ApiError)) return t('Something went wrong. Try again in a moment.');
  if (err.code === 'network') return t('Could not reach pawpost. Check your internet connection and try again.');
  if (err.status === 503) return t('pawpost is busy. {value}, then try again.', { value: waitWords(err.retryAfter ?? 5) });
  return null;
}

/** `/forgot`: asks for the email address and sends a link to choose a new password. */
export function forgotView() {
  const email = fieldWithError('email', t('Your email address'), { type: 'email', autocomplete: 'email', required: true });
  const formError = h('p', { class: 'error', role: 'alert' });
  const done = h('div', { class: 'notice', role: 'status' });
  const button = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'primary', text: t('Send me a link') }));
  const form = /** @type {HTMLFormElement} */ (h('form', { class: 'card', novalidate: true }, email.wrap, button, formError));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    email.show('');
    formError.textContent = '';
    const address = email.input.value.trim();
    if (!address) {
      email.show(t('Type the email address you use to sign in to pawpost.'));
      email.input.focus();
      return;
    }
    button.disabled = true;
    try {
      await api('POST', '/api/v1/password-resets', { email: address });
      form.hidden = true;
      done.replaceChildren(
        h('p', { text: t('If an account uses {address}, we sent it an email with a link to choose a new password.', { address }) }),
        h('p', { text: t('Open the link within {RESET_LINK_MINUTES} minutes; it works once. If the email does not arrive in a few minutes, look in your spam folder, or check the address and ask again.', { RESET_LINK_MINUTES }) }),
        h('p', {}, h('a', { href: '/signin', 'data-link': true, text: t('Back to sign in') })),
      );
    } catch (err) {
      if (err instanceof ApiError && err.code === 'invalid_email') {
        email.show(t('This does not look like an email address. Check it and try again.'));
        email.input.focus();
      } else if (err instanceof ApiError && err.status === 429) {
        email.show(t('You have asked for several links already. {value}, then ask again, or use the newest link in your email.', { value: waitWords(err.retryAfter) }));
        email.input.focus();
      } else {
        formError.textContent = troubleWords(err) ?? t('No link was sent. Try again in a moment.');
      }
    } finally {
      button.disabled = false;
    }
  });
  return h(
    'section',
    { class: 'auth' },
    h('h1', { text: t('Forgot your password?') }),
    h('p', { class: 'intro', text: t('Type the email address of your pawpost account. We will email you a link to choose a new password.') }),
    form,
    done,
    h('p', {}, t('Remembered it? '), h('a', { href: '/signin', 'data-link': true, text: t('Sign in') })),
  );
}

/**
 * `/reset#<token>`: the link from the email. The token is kept for this tab only and
 * taken out of the address bar (it never goes to the server in a URL).
 * @param {import('../app.js').App} app
 */
export function resetView(app) {
  const fromLink = location.hash.slice(1);
  if (fromLink) {
    sessionStorage.setItem(RESET_KEY, decodeURIComponent(fromLink));
    history.replaceState(null, '', '/reset');
  }
  const token = sessionStorage.getItem(RESET_KEY);
  const askAgain = h('p', {}, h('a', { href: '/forgot', 'data-link': true, text: t('Ask for a new link') }));
  if (!token) {
    return h(
      'section',
      { class: 'auth' },
      h('h1', { text: t('This link is incomplete') }),
      h('p', { text: t('Open the link from the email once more, or ask for a new link.') }),
      askAgain,
    );
  }
  const rules = passwordRulesHint(() => [password.input.value, '', '']);
  const password = fieldWithError('new_password', t('Your new password'), { type: 'password', autocomplete: 'new-password', required: true }, rules.hint);
  rules.update();
  password.input.addEventListener('input', rules.update);
  const formError = h('p', { class: 'error', role: 'alert' });
  const button = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'primary', text: t('Set my new password') }));
  const form = /** @type {HTMLFormElement} */ (h('form', { class: 'card', novalidate: true }, password.wrap, button, formError));
  const section = h(
    'section',
    { class: 'auth' },
    h('h1', { text: t('Choose a new password') }),
    h('p', { class: 'intro', text: t('Setting a new password signs you out everywhere; then you sign in with the new one.') }),
    form,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    password.show('');
    formError.textContent = '';
    if (!password.input.value) {
      password.show(t('Type the new password you want.'));
      password.input.focus();
      return;
    }
    button.disabled = true;
    try {
      await api('POST', '/api/v1/password-resets/confirm', { token, new_password: password.input.value });
      sessionStorage.removeItem(RESET_KEY);
      const note = t('Your new password is set, and every browser was signed out. Sign in with your new password.');
      if (app.account) {
        app.signedOut(note);
      } else {
        app.flash(note);
        app.navigate('/signin', true);
      }
    } catch (err) {
      if (err instanceof ApiError && (err.code === 'reset_link_invalid' || err.code === 'reset_link_expired')) {
        sessionStorage.removeItem(RESET_KEY);
        const why =
          err.code === 'reset_link_expired'
            ? t('This link is more than {RESET_LINK_MINUTES} minutes old, so it no longer works.', { RESET_LINK_MINUTES })
            : t('This link no longer works: it was already used, the password was changed since it was sent, or the link is not complete.');
        form.replaceWith(h('div', { class: 'card' }, h('p', { class: 'error', role: 'alert', text: why }), h('p', { text: t('Your password was not changed. Ask for a new link; it comes by email.') }), askAgain));
      } else if (err instanceof ApiError && err.code === 'password_rejected') {
        password.show(passwordRejectedWords(err));
        password.input.focus();
      } else if (err instanceof ApiError && err.code === 'account_locked') {
        formError.textContent = t('This account is locked, so its password cannot be changed. Contact the people who run this pawpost server.');
      } else if (err instanceof ApiError && err.code === 'reset_under_way') {
        formError.textContent = t('A new password is being set for this account right now. Wait a moment, then sign in.');
      } else {
        formError.textContent = troubleWords(err) ?? t('Your password was not changed. Try again in a moment.');
      }
    } finally {
      button.disabled = false;
    }
  });
  return section;
}

/**
 * The sentence asking to confirm the address, shown until it is confirmed.
 * @param {string} email
 */
function confirmWords(email) {
  return t('Please confirm your email address: we sent a link to {email}.', { email });
}

/**
 * "wait about 3 hours", from a Retry-After in seconds (a day at most).
 * @param {number | null} seconds
 */
function waitHoursWords(seconds) {
  if (seconds !== null && seconds > 90 * 60) return t('wait about {count} hours', { count: Math.ceil(seconds / 3600) });
  const words = waitWords(seconds);
  return words[0].toLowerCase() + words.slice(1);
}

/**
 * While the signed-in account's email address is not confirmed: the sentence asking for
 * it, and a button that sends the link again, its result beside it. Null once confirmed.
 * @param {import('../app.js').App} app
 * @returns {HTMLElement | null}
 */
export function emailNotice(app) {
  const account = app.account;
  if (!account || account.email_verified !== false) return null;
  const result = h('span', { class: 'resend-result', role: 'status' });
  const button = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', text: t('Send the link again') }));
  button.addEventListener('click', async () => {
    button.disabled = true;
    result.textContent = '';
    result.classList.remove('error');
    try {
      await api('POST', '/api/v1/email-verifications');
      result.textContent = t('We sent a new link to {email}. Open the newest one within {VERIFY_LINK_DAYS} days; it works once.', { email: account.email, VERIFY_LINK_DAYS });
    } catch (err) {
      result.classList.add('error');
      if (err instanceof ApiError && err.code === 'email_already_verified') {
        account.email_verified = true;
        result.classList.remove('error');
        result.textContent = t('Your email address is confirmed already. There is nothing more to do.');
      } else if (err instanceof ApiError && err.status === 429) {
        result.textContent = t('We sent you several links today already. Use the newest one in your email, or {value} and ask again.', { value: waitHoursWords(err.retryAfter) });
      } else {
        result.textContent = troubleWords(err) ?? t('No link was sent. Try again in a moment.');
      }
    } finally {
      button.disabled = false;
    }
  });
  return h('div', { class: 'notice email-notice' }, h('p', { text: confirmWords(account.email) }), h('p', {}, button, ' ', result));
}

/**
 * `/verify-email#<token>`: the link from the email confirms the address as it opens. The
 * token is kept for this tab only and taken out of the address bar (it never goes to the
 * server in a URL).
 * @param {import('../app.js').App} app
 */
export async function verifyEmailView(app) {
  const fromLink = location.hash.slice(1);
  if (fromLink) {
    sessionStorage.setItem(VERIFY_KEY, decodeURIComponent(fromLink));
    history.replaceState(null, '', '/verify-email');
  }
  const token = sessionStorage.getItem(VERIFY_KEY);
  const onward = app.account
    ? h('p', {}, h('a', { href: '/', 'data-link': true, text: t('Go to your households') }))
    : h('p', {}, h('a', { href: '/signin', 'data-link': true, text: t('Sign in') }));
  // Signed out, whether the address is confirmed (perhaps by another link) is unknown here.
  const askAgain = app.account
    ? t('Your email address is not confirmed yet. Ask for a new link with the "Send the link again" button on your households page.')
    : t('If your email address is not confirmed yet, sign in, then ask for a new link with the "Send the link again" button on your households page.');
  const confirmed = () =>
    h('section', { class: 'auth' }, h('h1', { text: t('Email address confirmed') }), h('p', { class: 'notice', role: 'status', text: t('Thank you, your email address is confirmed.') }), onward);
  /** Whether the signed-in account's address is confirmed now, as the server says. */
  const nowConfirmed = async () => {
    if (!app.account) return false;
    try {
      const me = await api('GET', '/api/v1/accounts/me');
      app.account.email_verified = me.email_verified;
      return me.email_verified === true;
    } catch {
      return false;
    }
  };
  /**
   * @param {string} heading
   * @param {string} why
   * @param {string} [todo]
   */
  const refused = (heading, why, todo = askAgain) =>
    h('section', { class: 'auth' }, h('h1', { text: heading }), h('div', { class: 'card' }, h('p', { class: 'error', role: 'alert', text: why }), h('p', { text: todo })), onward);
  if (!token) {
    if (app.account?.email_verified) return confirmed();
    return refused(t('This link is incomplete'), t('This link has no code in it. Open the link from the email once more.'));
  }
  try {
    await api('POST', '/api/v1/email-verifications/confirm', { token });
    sessionStorage.removeItem(VERIFY_KEY);
    await nowConfirmed();
    return confirmed();
  } catch (err) {
    if (!(err instanceof ApiError && (err.code === 'verification_link_invalid' || err.code === 'verification_link_expired'))) {
      return refused(t('Your email address is not confirmed yet'), troubleWords(err) ?? t('Something went wrong. Try again in a moment.'), t('The link still works: reload this page to try it again.'));
    }
    sessionStorage.removeItem(VERIFY_KEY);
    if (await nowConfirmed()) return confirmed();
    return err.code === 'verification_link_expired'
      ? refused(t('This link is too old'), t('This link is more than {VERIFY_LINK_DAYS} days old, so it no longer works.', { VERIFY_LINK_DAYS }))
      : refused(t('This link no longer works'), t('This link was already used, or it is not complete.'));
  }
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
    h('p', { text: t('Use a long passphrase: a few unrelated words. No symbols, digits or capitals needed.') }),
    ruleList,
    ruleStatus,
  );
  const emailField = fieldWithError('email', t('Email'), { type: 'email', autocomplete: 'email', required: true });
  const nameField = signup
    ? fieldWithError('display_name', t('Your name (as your family knows you)'), { type: 'text', autocomplete: 'name', required: true, maxlength: '100' })
    : null;
  const passwordField = fieldWithError(
    'password',
    t('Password'),
    { type: 'password', autocomplete: signup ? 'new-password' : 'current-password', required: true },
    signup ? hint : undefined,
  );
  const fields = { email: emailField, display_name: nameField, password: passwordField };
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      { class: 'card', novalidate: true },
      emailField.wrap,
      nameField?.wrap,
      passwordField.wrap,
      h('button', { type: 'submit', class: 'primary', text: signup ? t('Create account') : t('Sign in') }),
      error,
    )
  );
  const get = (/** @type {string} */ name) => /** @type {HTMLInputElement} */ (form.elements.namedItem(name));
  /**
   * Shows `text` beside the field it concerns (or under the form) and moves there.
   * @param {'email' | 'display_name' | 'password' | null} name
   * @param {string} text
   */
  const complain = (name, text) => {
    const f = name ? fields[name] : null;
    if (f) {
      f.show(text);
      f.input.focus();
    } else {
      error.textContent = text;
    }
  };

  let lastSummary = '';
  function updateRules() {
    const rules = passwordRules(get('password').value, get('email').value, signup ? get('display_name').value : '');
    ruleList.replaceChildren(
      ...rules.map((r) =>
        h('li', { class: r.met ? 'met' : 'unmet', dataset: { rule: r.id } }, h('span', { class: 'mark', 'aria-hidden': 'true', text: r.met ? '✓' : '✗' }), h('span', { class: 'visually-hidden', text: r.met ? t('Met: ') : t('Not met: ') }), r.text),
      ),
    );
    const unmet = rules.filter((r) => !r.met).length;
    const summary = unmet === 0 ? t('The password meets the rules.') : t('{count} password rules not met yet.', { count: unmet });
    if (summary !== lastSummary) ruleStatus.textContent = lastSummary = summary;
  }
  if (signup) {
    updateRules();
    for (const n of ['password', 'email', 'display_name']) get(n).addEventListener('input', updateRules);
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    for (const f of Object.values(fields)) f?.show('');
    const email = get('email').value.trim();
    const password = get('password').value;
    if (!email) {
      complain('email', t('Type your email address.'));
      return;
    }
    if (signup && !get('display_name').value.trim()) {
      complain('display_name', t('Type your name, as your family knows you.'));
      return;
    }
    if (!password) {
      complain('password', signup ? t('Choose a password.') : t('Type your password.'));
      return;
    }
    const button = /** @type {HTMLButtonElement} */ (form.querySelector('button[type=submit]'));
    button.disabled = true;
    try {
      if (signup) {
        await api('POST', '/api/v1/accounts', { email, password, display_name: get('display_name').value.trim() });
      }
      const session = await api('POST', '/api/v1/sessions', { email, password });
      await app.signedIn(session);
      const joined = await acceptPendingInvitation(app);
      const next = new URLSearchParams(location.search).get('next');
      const to = joined ? `/households/${joined}` : next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
      // The households page asks for it itself, with a button to send the link again.
      if (signup && to !== '/') app.flash(confirmWords(email));
      app.navigate(to, true);
    } catch (err) {
      if (!(err instanceof ApiError)) {
        error.textContent = troubleWords(err) ?? '';
      } else if (err.code === 'password_rejected') {
        complain('password', passwordRejectedWords(err));
      } else if (err.status === 429) {
        error.textContent = signup
          ? t('Several accounts were made from here a moment ago. {value}, then try again.', { value: waitWords(err.retryAfter) })
          : t('Too many wrong passwords were tried. {value}, then try again, or choose "Forgot password?".', { value: waitWords(err.retryAfter) });
      } else {
        complain(fieldFor(err.code), troubleWords(err) ?? err.message);
      }
    } finally {
      button.disabled = false;
    }
  });

  const passkey = passkeyChoice(
    mode,
    () => {
      const email = get('email').value.trim();
      const displayName = signup ? get('display_name').value.trim() : '';
      return email && displayName ? { email, displayName } : t('To sign up with a passkey, type your email address and your name above first.');
    },
    async (session) => {
      await app.signedIn(session);
      const joined = await acceptPendingInvitation(app);
      app.navigate(joined ? `/households/${joined}` : '/', true);
    },
  );
  const forgot = signup ? null : h('p', { class: 'forgot' }, h('a', { href: '/forgot', 'data-link': true, text: t('Forgot password?') }));
  const switchLink = signup
    ? h('p', {}, t('Already have an account? '), h('a', { href: `/signin${location.search}`, 'data-link': true, text: t('Sign in') }))
    : h('p', {}, t('New to pawpost? '), h('a', { href: `/signup${location.search}`, 'data-link': true, text: t('Create an account') }));
  return h(
    'section',
    { class: 'auth' },
    h('h1', { text: signup ? t('Create your pawpost account') : t('Sign in to pawpost') }),
    intro ? h('p', { class: 'intro', text: intro }) : null,
    form,
    passkey,
    forgot,
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
    return h('section', {}, h('h1', { text: t('Invitation link incomplete') }), h('p', { text: t('This link has no invitation in it. Ask the parent who invited you for a new link.') }));
  }
  if (app.account) {
    try {
      const id = await acceptPendingInvitation(app);
      if (id) {
        queueMicrotask(() => app.navigate(`/households/${id}`, true));
        return h('section', {}, h('h1', { text: t('Joining…') }));
      }
    } catch (e) {
      return h('section', {}, h('h1', { text: t('This invitation cannot be used') }), h('p', { class: 'error', role: 'alert', text: troubleWords(e) ?? (e instanceof Error ? e.message : String(e)) }));
    }
  }
  const mode = new URLSearchParams(location.search).get('mode') === 'signin' ? 'signin' : 'signup';
  const view = authView(app, mode, t('You have been invited to a family on pawpost. Create an account (or sign in) to join; a parent will then approve you.'));
  const link = view.querySelector('a[data-link]');
  if (link instanceof HTMLAnchorElement) link.href = mode === 'signup' ? '/join?mode=signin' : '/join';
  return view;
}
