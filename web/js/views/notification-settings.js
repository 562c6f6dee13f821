// "Email me when…" on the Security page: one checkbox per kind of notification mail,
// saved as soon as it is ticked or cleared, with the result written beside it.
import { api } from '../api.js';
import { NOTIFICATION_KINDS } from '../notifications.js';
import { h } from '../util.js';
import { troubleWords } from './auth.js';
import { t } from '../i18n.js';

/**
 * @typedef {{ kind: string, enabled: boolean }} NotificationSetting
 */

/**
 * The section, with the account's current switches.
 * @returns {Promise<HTMLElement>}
 */
export async function notificationSection() {
  /** @type {{ settings: NotificationSetting[] }} */
  const current = await api('GET', '/api/v1/accounts/me/notifications');
  const list = h('ul', { class: 'notification-settings' });
  for (const { kind, label } of NOTIFICATION_KINDS) {
    const setting = current.settings.find((s) => s.kind === kind);
    const id = `notify-${kind}`;
    const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id, dataset: { kind } }));
    box.checked = setting ? setting.enabled : true;
    const result = h('span', { class: 'saved', role: 'status', id: `${id}-result` });
    box.addEventListener('change', async () => {
      const wanted = box.checked;
      box.disabled = true;
      result.textContent = t('Saving…');
      result.classList.remove('error');
      try {
        /** @type {{ settings: NotificationSetting[] }} */
        const saved = await api('PUT', '/api/v1/accounts/me/notifications', { settings: [{ kind, enabled: wanted }] });
        const now = saved.settings.find((s) => s.kind === kind);
        box.checked = now ? now.enabled : wanted;
        result.textContent = box.checked ? t('Saved: we will email you.') : t('Saved: no more emails about this.');
      } catch (err) {
        box.checked = !wanted;
        result.classList.add('error');
        result.textContent = troubleWords(err) ?? t('This was not saved. Try again in a moment.');
      } finally {
        box.disabled = false;
      }
    });
    list.append(h('li', {}, box, ' ', h('label', { for: id, text: label }), ' ', result));
  }
  return h(
    'section',
    { 'aria-labelledby': 'notifications-title', class: 'notifications' },
    h('h2', { id: 'notifications-title', text: t('Email me when…') }),
    h('p', { class: 'hint', text: t("The emails say only that something happened in a family: never what was said, never the child's name. Each one has a link to stop that kind of email.") }),
    list,
  );
}
