// The household's recovery code: made (and replaced) on an owner's device, used on a new
// browser to look after the household again when every earlier device is gone.
import { generateRecoveryCode, parseRecoveryCode, PawpostCryptoError, recoveryMember, recoverySigner } from '../crypto/index.js';
import { api } from '../api.js';
import { keysProblem, syncRoster } from '../household-keys.js';
import { bytesUuid, h, sameBytes, uuidBytes } from '../util.js';
import { loadHousehold } from './context.js';
import { confirmSavedPrompt, renderRecoverySheet } from './recovery-sheet.js';
import { rememberWithPasskey, savedWithPasskey } from './recovery-passkey.js';
import { t } from '../i18n.js';

/**
 * @param {import('../app.js').App} app
 * @param {string} householdId
 */
export async function recoveryView(app, householdId) {
  const ctx = await loadHousehold(app, householdId, { sync: false });
  const back = h('p', {}, h('a', { href: `/households/${householdId}`, 'data-link': true, text: t('← Messages') }));
  if (!ctx.isOwner) {
    return h(
      'section',
      { class: 'recovery' },
      h('h1', { text: t('Recovery code') }),
      h('p', { class: 'notice', role: 'status', text: t('Only a parent who owns the household has its recovery code. Ask them to approve this browser on their Family page.') }),
      back,
    );
  }
  if (ctx.signsRoster) return makeCodeView(app, ctx, back);
  return useCodeView(app, ctx, back);
}

/**
 * An owner device makes the household's recovery code, or replaces it.
 * @param {import('../app.js').App} app
 * @param {import('./context.js').HouseholdContext} ctx
 * @param {HTMLElement} back
 */
function makeCodeView(app, ctx, back) {
  const name = ctx.household.name;
  const status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const error = h('p', { class: 'error', role: 'alert' });
  const area = h('div', { class: 'recovery-area' });
  const start = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'primary', text: ctx.recovery ? t('Make a new recovery code') : t('Make a recovery code') }));
  start.addEventListener('click', () => {
    start.hidden = true;
    error.textContent = '';
    const code = generateRecoveryCode();
    const sheet = renderRecoverySheet({ householdName: name, code, createdAt: new Date() });
    const prompt = confirmSavedPrompt(code);
    const saveBtn = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'primary', text: t('I saved it: use this code') }));
    const form = /** @type {HTMLFormElement} */ (h('form', { class: 'card confirm-saved' }, prompt.element, saveBtn));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.textContent = '';
      if (!prompt.check()) {
        prompt.showError(t('Those are not the groups of your code. Look at the code above and type the two groups asked for.'));
        return;
      }
      prompt.showError('');
      saveBtn.disabled = true;
      status.textContent = t('Saving…');
      try {
        if (!app.device || !app.account) throw new Error(t('This browser has no keys yet; reload the page.'));
        const signer = await recoverySigner(parseRecoveryCode(code));
        await syncRoster(ctx.id, app.device.keys, { recovery: recoveryMember(signer, uuidBytes(app.account.id)) });
        const withPasskey = await rememberWithPasskey(ctx.id, code);
        area.replaceChildren();
        status.textContent = ctx.recovery
          ? t('Your new recovery code is in force. The old one no longer works: you can throw that paper away.')
          : t('Your recovery code is in force. Keep the paper safe.');
        if (withPasskey) status.textContent += t(' Your passkey also keeps it, encrypted, so a new phone with the same passkey can use it without typing.');
      } catch (err) {
        status.textContent = '';
        error.textContent = t('The code was not saved. {value}', { value: keysProblem(err) });
        saveBtn.disabled = false;
      }
    });
    area.replaceChildren(sheet, form);
  });
  return h(
    'section',
    { class: 'recovery' },
    h('h1', { text: t('Recovery code for {name}', { name }) }),
    back,
    h('p', {
      text: ctx.recovery
        ? t('{name} has a recovery code. If you lost it, or someone else may have seen it, make a new one: the old one stops working.', { name })
        : t('Make a recovery code for {name}. If this browser is ever lost or cleared, the code lets you look after your family again from a new phone or computer.', { name }),
    }),
    start,
    status,
    error,
    area,
  );
}

/**
 * A signed-in owner on a browser that is not in the household keys enters the recovery
 * code: the code signs household keys that add this browser as an owner device, and can
 * take out lost devices.
 * @param {import('../app.js').App} app
 * @param {import('./context.js').HouseholdContext} ctx
 * @param {HTMLElement} back
 */
function useCodeView(app, ctx, back) {
  const name = ctx.household.name;
  if (!ctx.recovery || !ctx.signed) {
    return h(
      'section',
      { class: 'recovery' },
      h('h1', { text: t('Recovery code for {name}', { name }) }),
      back,
      h('p', {
        class: 'notice',
        role: 'status',
        text: ctx.rosterError ?? t('{name} has no recovery code. Open pawpost on a device you used before for this household, or ask its other parent to approve this browser.', { name }),
      }),
    );
  }
  const me = app.account?.id;
  const lost = ctx.signed.roster.members.filter(
    (m) => m.role === 'owner' && m.status === 'approved' && me && bytesUuid(m.accountId) === me && !sameBytes(m.deviceId, uuidBytes(app.device?.id ?? '00000000-0000-0000-0000-000000000000')),
  );
  const status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const error = h('p', { class: 'error', role: 'alert' });
  const fieldError = h('p', { id: 'recovery-code-error', class: 'error field-error', role: 'alert' });
  const input = /** @type {HTMLInputElement} */ (
    h('input', { id: 'recovery-code', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'characters', 'aria-describedby': 'recovery-code-hint recovery-code-error' })
  );
  const boxes = lost.map((m) => {
    const id = bytesUuid(m.deviceId);
    const listed = ctx.devices.find((d) => d.device_id === id);
    const box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id: `lost-${id}`, value: id }));
    return { box, row: h('div', { class: 'check' }, box, h('label', { for: `lost-${id}`, text: t('I lost {value}: take it out', { value: listed?.label || 'this device' }) })) };
  });
  const submit = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'primary', text: t('Use the code') }));
  /**
   * @param {string} code
   */
  async function useCode(code) {
    error.textContent = '';
    fieldError.textContent = '';
    let bytes;
    try {
      bytes = parseRecoveryCode(code);
    } catch (e) {
      if (!(e instanceof PawpostCryptoError)) throw e;
      fieldError.textContent = t('A recovery code has 32 letters and digits in 8 groups of 4, like 7K3M-Q9XA-…. Check what you typed.');
      input.focus();
      return;
    }
    submit.disabled = true;
    status.textContent = t('Checking the code…');
    try {
      const signer = await recoverySigner(bytes);
      if (!ctx.recovery || !sameBytes(signer.deviceId, ctx.recovery.deviceId)) {
        status.textContent = '';
        fieldError.textContent = t("This is not {name}'s current recovery code. Check each group; if a newer code was made, use that one.", { name });
        input.focus();
        return;
      }
      if (!app.device) throw new Error(t('This browser has no keys yet; reload the page.'));
      const removeDevices = boxes.filter((b) => b.box.checked).map((b) => b.box.value);
      await syncRoster(ctx.id, app.device.keys, { signer: signer.keys, removeDevices });
      // The lost devices leave the account too, so that nobody is asked to trust them again.
      for (const id of removeDevices) await api('DELETE', `/api/v1/devices/${id}`).catch(() => {});
      app.flash(removeDevices.length ? t('This browser now looks after {name}. The lost devices are taken out.', { name }) : t('This browser now looks after {name}.', { name }));
      app.navigate(`/households/${ctx.id}/family`, true);
    } catch (e) {
      status.textContent = '';
      error.textContent = t('This browser was not added. {value}', { value: keysProblem(e) });
    } finally {
      submit.disabled = false;
    }
  }
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      { class: 'card use-recovery' },
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'recovery-code', text: t('Recovery code') }),
        input,
        h('p', { id: 'recovery-code-hint', class: 'hint', text: t('The 8 groups of 4 letters and digits on the paper you printed or wrote down. Capitals, spaces and dashes do not matter.') }),
        fieldError,
      ),
      ...boxes.map((b) => b.row),
      submit,
    )
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    useCode(input.value);
  });
  const view = h(
    'section',
    { class: 'recovery' },
    h('h1', { text: t('Use the recovery code for {name}', { name }) }),
    back,
    h('p', { text: t("This browser is new to {name}. Enter the household's recovery code to look after it from here.", { name }) }),
    status,
    error,
    form,
  );
  // A passkey that keeps this household's code (wrapped with its PRF key) fills it in.
  savedWithPasskey(ctx.id).then((code) => {
    if (!code) return;
    const use = h('button', { type: 'button', class: 'primary', text: t('Use the code your passkey keeps') });
    use.addEventListener('click', () => useCode(code));
    form.before(h('div', { class: 'card passkey-code' }, h('p', { text: t("Your passkey keeps this household's recovery code: no need to type it.") }), use));
  });
  return view;
}
