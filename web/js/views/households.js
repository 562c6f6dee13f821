// The list of households, with unread counts, and creating one (with the child's name).
import { api, ApiError } from '../api.js';
import { syncRoster } from '../household-keys.js';
import { MediaType } from '../mail.js';
import { h } from '../util.js';
import { shareChildInfo, loadHousehold, unreadCount } from './context.js';
import { emailNotice } from './auth.js';
import { t } from '../i18n.js';
import { onLive } from '../live.js';

const STATUS_TEXT = /** @type {Record<string, string>} */ ({
  pending: t('waiting for a parent to approve you'),
  blocked: t('a parent has blocked you'),
  approved: '',
});

/** @param {import('../app.js').App} app */
export async function householdsView(app) {
  /** @type {any[]} */
  const households = await api('GET', '/api/v1/households');
  const list = h('ul', { class: 'households' });
  /** The status line of each household, by id, for the live updates below. */
  const statusLines = new Map();
  for (const hh of households) {
    const badge = h('span', { class: 'badge', hidden: true });
    const status = STATUS_TEXT[hh.status] ?? hh.status;
    const statusLine = h('span', { class: 'muted', text: status ? ` — ${status}` : '' });
    statusLines.set(hh.id, statusLine);
    list.append(
      h(
        'li',
        {},
        h('a', { href: `/households/${hh.id}`, 'data-link': true, class: 'household-link', text: hh.name }),
        ' ',
        h('span', { class: 'role', text: hh.role }),
        statusLine,
        ' ',
        badge,
      ),
    );
    if (hh.status === 'approved') {
      Promise.all([api('GET', `/api/v1/households/${hh.id}/messages`), api('GET', `/api/v1/households/${hh.id}/devices`)])
        .then(([/** @type {any[]} */ messages, /** @type {any[]} */ devices]) => {
          const n = unreadCount(app, messages, devices);
          if (n > 0) {
            badge.hidden = false;
            badge.textContent = t('{count} new', { count: n });
            badge.setAttribute('aria-label', t('{count} new messages', { count: n }));
          }
        })
        .catch(() => {});
    }
  }

  // A parent approving or blocking this person shows here at once (live.js), without
  // redrawing the page and what is typed into it.
  onLive(app, async (change) => {
    if (change.kind !== 'open' && !(change.kind === 'member' && change.account === app.account?.id)) return;
    /** @type {any[]} */
    const now = await api('GET', '/api/v1/households').catch(() => []);
    for (const hh of now) {
      const line = statusLines.get(hh.id);
      const status = STATUS_TEXT[hh.status] ?? hh.status;
      if (line) line.textContent = status ? ` — ${status}` : '';
    }
  });

  const error = h('p', { class: 'error', role: 'alert' });
  // What is wrong with a name is said beside it.
  const nameError = h('p', { id: 'hh-name-error', class: 'error field-error', role: 'alert' });
  const childError = h('p', { id: 'child-name-error', class: 'error field-error', role: 'alert' });
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      { class: 'card' },
      h('h2', { text: t('Start a household') }),
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'hh-name', text: t('Household name') }),
        h('input', { id: 'hh-name', name: 'name', required: true, maxlength: '100', 'aria-describedby': 'hh-name-hint hh-name-error' }),
        h('p', { id: 'hh-name-hint', class: 'hint', text: t('For example "The Rivera family". pawpost\'s server sees this name.') }),
        nameError,
      ),
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'child-name', text: t("Your child's name") }),
        h('input', { id: 'child-name', name: 'child', required: true, maxlength: '100', 'aria-describedby': 'child-name-hint child-name-error' }),
        h('p', { id: 'child-name-hint', class: 'hint', text: t('Encrypted on this device for your family; the server never sees it.') }),
        childError,
      ),
      h('button', { type: 'submit', class: 'primary', text: t('Create household') }),
      error,
    )
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    nameError.textContent = '';
    childError.textContent = '';
    const nameInput = /** @type {HTMLInputElement} */ (form.elements.namedItem('name'));
    const childInput = /** @type {HTMLInputElement} */ (form.elements.namedItem('child'));
    const name = nameInput.value.trim();
    const child = childInput.value.trim();
    if (!name) {
      nameError.textContent = t('Give your household a name, for example "The Rivera family".');
      nameInput.focus();
      return;
    }
    if (!child) {
      childError.textContent = t("Type your child's name, as the family calls them.");
      childInput.focus();
      return;
    }
    const button = /** @type {HTMLButtonElement} */ (form.querySelector('button'));
    button.disabled = true;
    try {
      if (!app.device) throw new Error(t('This browser has no keys yet; reload the page.'));
      const hh = await api('POST', '/api/v1/households', { name });
      await syncRoster(hh.id, app.device.keys);
      const ctx = await loadHousehold(app, hh.id, { sync: false });
      await shareChildInfo(app, ctx, MediaType.TEXT, new TextEncoder().encode(child));
      app.navigate(`/households/${hh.id}`);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'invalid_name') {
        nameError.textContent = err.message;
        nameInput.focus();
      } else {
        error.textContent = err instanceof Error ? err.message : String(err);
      }
    } finally {
      button.disabled = false;
    }
  });

  return h(
    'section',
    {},
    h('h1', { text: t('Your households') }),
    emailNotice(app),
    households.length ? list : h('p', { text: t('You are not in a household yet. Start one below, or open the invitation link a parent sent you.') }),
    form,
  );
}
