// Linking a new browser to a person's earlier device (as messengers link devices): the new
// browser shows a link code made from its own keys; a device the person already uses
// finds the browser whose keys give that code and signs a device certificate for it.
// Parents' devices then add it to the household keys without asking (docs/ENVELOPE.md,
// "Device certificate").
import { api, ApiError } from '../api.js';
import { linkCode, signCertificate } from '../crypto/index.js';
import { loadRoster } from '../household-keys.js';
import { bytesUuid, fromB64url, h, toB64url, uuidBytes } from '../util.js';
import { t } from '../i18n.js';

/** Digits in a link code. */
const LINK_CODE_DIGITS = 16;

/**
 * @typedef {{
 *   device_id: string,
 *   label: string,
 *   identity: string,
 *   created_at: string,
 *   certificate?: { certifier_device_id: string, signature: string } | null,
 * }} MyDevice
 */

/**
 * Whether a household's keys already list this device as approved (a parent approved it),
 * so that it needs no link.
 * @param {string} deviceId
 * @param {{ id: string, status: string }[]} households
 */
async function inSomeRoster(deviceId, households) {
  for (const hh of households.filter((x) => x.status === 'approved')) {
    try {
      const signed = await loadRoster(hh.id);
      if (signed?.roster.members.some((m) => m.status === 'approved' && bytesUuid(m.deviceId) === deviceId)) return true;
    } catch {
      // Keys that do not check out vouch for nothing.
    }
  }
  return false;
}

/**
 * The Security page's part about linking: this browser's link code when it is new to an
 * account that has other devices, and a form to link a new browser from this one.
 * @param {import('../app.js').App} app
 * @param {MyDevice[]} devices the account's devices
 * @param {{ id: string, status: string }[]} households the account's households
 * @returns {Promise<HTMLElement>}
 */
export async function linkSection(app, devices, households) {
  const here = devices.find((d) => d.device_id === app.device?.id);
  const others = devices.filter((d) => d.device_id !== app.device?.id);
  const earliest = [...devices].sort((a, b) => (a.created_at < b.created_at ? -1 : 1))[0];
  const parts = [];
  // The first device of an account is approved with its person; a later one is vouched
  // for by a certificate (or by a parent, who compares the fingerprint).
  if (here && others.length && !here.certificate && earliest?.device_id !== here.device_id && !(await inSomeRoster(here.device_id, households))) {
    const code = await linkCode(fromB64url(here.identity));
    parts.push(
      h(
        'div',
        { class: 'card link-this' },
        h('p', { text: t('This browser is new to your account. To send and hear messages here, link it from a phone or computer where you already use pawpost: open Security there, choose "Link a new browser" and type this code:') }),
        h('p', { class: 'link-code', text: code }),
        h('p', { class: 'hint', text: t('No other device any more? Ask a parent of your household to approve this browser on their Family page; they will see the fingerprint above.') }),
      ),
    );
  }
  const candidates = others.filter((d) => !d.certificate);
  if (app.device && candidates.length) {
    const input = /** @type {HTMLInputElement} */ (
      h('input', { id: 'link-code', inputmode: 'numeric', autocomplete: 'off', maxlength: '24', 'aria-describedby': 'link-code-hint link-code-error' })
    );
    const fieldError = h('p', { id: 'link-code-error', class: 'error field-error', role: 'alert' });
    const status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
    const submit = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'primary', text: t('Link') }));
    const form = /** @type {HTMLFormElement} */ (
      h(
        'form',
        { class: 'card link-new' },
        h(
          'div',
          { class: 'field' },
          h('label', { for: 'link-code', text: t('Link a new browser: the code it shows') }),
          input,
          h('p', { id: 'link-code-hint', class: 'hint', text: t('Sign in on the new phone or computer, open Security there, and type the 16 digits it shows.') }),
          fieldError,
        ),
        submit,
        status,
      )
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      fieldError.textContent = '';
      status.textContent = '';
      const typed = input.value.replace(/\D/g, '');
      if (typed.length !== LINK_CODE_DIGITS) {
        fieldError.textContent = t("The code has {LINK_CODE_DIGITS} digits. Check the new browser's Security page.", { LINK_CODE_DIGITS });
        return;
      }
      submit.disabled = true;
      try {
        let match = null;
        for (const d of candidates) {
          if ((await linkCode(fromB64url(d.identity))).replace(/\D/g, '') === typed) match = d;
        }
        if (!match) {
          fieldError.textContent = t('No new browser of yours shows this code. Check the digits, and that the new browser is signed in to this account.');
          return;
        }
        const device = /** @type {import('../device.js').ThisDevice} */ (app.device);
        const signature = await signCertificate(device.keys, uuidBytes(/** @type {any} */ (app.account).id), fromB64url(match.identity));
        await api('POST', `/api/v1/devices/${match.device_id}/certificate`, {
          certifier_device_id: device.id,
          signature: toB64url(signature),
        });
        input.value = '';
        status.textContent = t("Linked: {value}. It can send and hear messages once a parent's device next opens pawpost.", { value: match.label || t('the new browser') });
      } catch (err) {
        fieldError.textContent = err instanceof ApiError ? err.message : t('Not linked: {value}', { value: err instanceof Error ? err.message : String(err) });
      } finally {
        submit.disabled = false;
      }
    });
    parts.push(form);
  }
  return h('div', { class: 'linking' }, ...parts);
}

