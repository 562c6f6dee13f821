// Security: changing the password, where this account is signed in, its devices' fingerprints, paired toys, recent
// activity (the account's and each household's), the account's data (export, with the
// messages this browser can open) and deleting the account.
import { api, ApiError } from '../api.js';
import { activitySections } from './activity.js';
import { linkSection } from './linking.js';
import { notificationSection } from './notification-settings.js';
import { forgetDevice } from '../device.js';
import { fetchExport, openArchive } from '../export.js';
import { MediaType } from '../mail.js';
import { noPasswordNotice, passkeysSection } from '../passkeys.js';
import { formatDuration, formatTime, h } from '../util.js';
import { fieldWithError, passwordRejectedWords, passwordRulesHint, troubleWords, waitWords } from './auth.js';
import { t } from '../i18n.js';
import { describeUserAgent } from '../useragent.js';

const KIND = /** @type {Record<number, string>} */ ({
  [MediaType.OGG_OPUS]: t('voice message'),
  [MediaType.IMAGE]: t('picture'),
  [MediaType.TEXT]: t('text'),
  [MediaType.JSON]: 'data',
});

/**
 * Offers bytes as a download: a link the person can use again, clicked once now.
 * @param {import('../app.js').App} app
 * @param {BlobPart} data
 * @param {string} type
 * @param {string} filename
 * @param {string} text
 */
function downloadLink(app, data, type, filename, text) {
  const url = URL.createObjectURL(new Blob([data], { type }));
  app.cleanup.push(() => URL.revokeObjectURL(url));
  return /** @type {HTMLAnchorElement} */ (h('a', { href: url, download: filename, class: 'download', text }));
}

/**
 * The messages of the archive that this browser opened, readable and playable.
 * @param {import('../app.js').App} app
 * @param {import('../export.js').ExportedHousehold[]} households
 */
function openedList(app, households) {
  /** @type {HTMLElement[]} */
  const parts = [];
  if (households.length === 0) parts.push(h('p', { text: t('There are no messages in your archive.') }));
  for (const hh of households) {
    const items = hh.items.map((item) => {
      const m = item.message;
      const kind = KIND[m.media_type] ?? 'message';
      const meta = h(
        'div',
        { class: 'meta' },
        h('strong', { class: 'sender', text: item.sender }),
        ' ',
        h('span', { class: 'muted', text: `${kind} · ${formatTime(m.created_at)}${m.media_type === MediaType.OGG_OPUS ? ` · ${formatDuration(m.duration_ms)}` : ''}` }),
      );
      /** @type {(Node | null)[]} */
      let body;
      if (!item.payload) {
        body = [h('p', { class: 'error', text: t('Could not be opened here: {value}', { value: item.error ?? 'unknown reason' }) })];
      } else if (m.media_type === MediaType.OGG_OPUS) {
        const player = h('div', { class: 'player' });
        const name = `voice-${m.created_at.slice(0, 10)}-${m.message_id.slice(0, 8)}.ogg`;
        const play = h('button', {
          type: 'button',
          class: 'play',
          text: t('Play'),
          'aria-label': t('Play the message from {sender}, {value}', { sender: item.sender, value: formatTime(m.created_at) }),
        });
        play.addEventListener('click', () => {
          const url = URL.createObjectURL(new Blob([/** @type {BlobPart} */ (item.payload)], { type: 'audio/ogg' }));
          app.cleanup.push(() => URL.revokeObjectURL(url));
          const audio = /** @type {HTMLAudioElement} */ (h('audio', { controls: true, src: url, 'aria-label': t('Message from {sender}', { sender: item.sender }) }));
          player.replaceChildren(audio);
          audio.play().catch(() => {});
        });
        body = [h('div', { class: 'row' }, play, downloadLink(app, /** @type {BlobPart} */ (item.payload), 'audio/ogg', name, t('Save {name}', { name }))), player];
      } else if (m.media_type === MediaType.IMAGE) {
        const url = URL.createObjectURL(new Blob([/** @type {BlobPart} */ (item.payload)]));
        app.cleanup.push(() => URL.revokeObjectURL(url));
        body = [h('img', { class: 'avatar', src: url, alt: t('Picture sent by {sender}', { sender: item.sender }) })];
      } else {
        body = [h('p', { class: 'opened-text', text: new TextDecoder().decode(item.payload) })];
      }
      return h('li', { class: `message export-message${item.payload ? '' : ' unopened'}`, dataset: { messageId: m.message_id } }, meta, ...body);
    });
    parts.push(h('h3', { text: hh.name }));
    if (items.length) parts.push(h('ul', { class: 'messages export-messages', 'aria-label': t('Messages of {name}', { name: hh.name }) }, ...items));
    if (hh.elsewhere) {
      parts.push(h('p', { class: 'muted', text: t('{count} more messages were sealed for your other devices or before this browser joined; they stay encrypted in the archive.', { count: hh.elsewhere }) }));
    }
  }
  return parts;
}

/**
 * "Export my data".
 * @param {import('../app.js').App} app
 */
function exportSection(app) {
  const status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const error = h('p', { class: 'error', role: 'alert' });
  const out = h('div', { class: 'export-out' });
  const button = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'primary', text: t('Export my data') }));
  button.addEventListener('click', async () => {
    button.disabled = true;
    error.textContent = '';
    status.textContent = t('Preparing your archive…');
    out.replaceChildren();
    try {
      const { text, archive, filename } = await fetchExport();
      const link = downloadLink(app, text, 'application/json', filename, t('Download {filename} again', { filename }));
      out.replaceChildren(h('p', {}, link));
      link.click();
      const total = archive.households.reduce((/** @type {number} */ n, /** @type {any} */ x) => n + (x.messages?.length ?? 0), 0);
      status.textContent = t('Your archive is downloaded ({count} messages, still encrypted). Opening what this browser can…', { count: total });
      if (!app.device) throw new Error(t('This browser has no keys, so it cannot open the messages.'));
      const opened = await openArchive(app.device, archive);
      const count = opened.reduce((n, x) => n + x.items.filter((i) => i.payload).length, 0);
      out.append(...openedList(app, opened));
      status.textContent = t('Your archive is downloaded. This browser opened {opened} of its {count} messages.', { opened: count, count: total });
    } catch (e) {
      status.textContent = '';
      error.textContent = t('The export failed: {value}', { value: e instanceof Error ? e.message : String(e) });
    } finally {
      button.disabled = false;
    }
  });
  return h(
    'section',
    { 'aria-labelledby': 'export-title', class: 'export' },
    h('h2', { id: 'export-title', text: t('Your data') }),
    h('p', { class: 'hint', text: t("One JSON file with everything pawpost's server holds about you: your account, sessions, devices, households and every message you sent or can open, still encrypted. This browser then opens the messages sealed for it, so you can read and play them here.") }),
    button,
    status,
    error,
    out,
  );
}

/**
 * "Change your password": the current one, then the new one; every other browser is
 * signed out and the account gets an email about it.
 * @param {import('../app.js').App} app
 */
function passwordSection(app) {
  const account = app.account;
  const current = fieldWithError('current-password', t('Your current password'), { type: 'password', autocomplete: 'current-password', required: true });
  const rules = passwordRulesHint(() => [fresh.input.value, account?.email ?? '', account?.display_name ?? '']);
  const fresh = fieldWithError('new-password', t('Your new password'), { type: 'password', autocomplete: 'new-password', required: true }, rules.hint);
  rules.update();
  fresh.input.addEventListener('input', rules.update);
  const formError = h('p', { class: 'error', role: 'alert' });
  const button = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'primary', text: t('Change my password') }));
  const form = /** @type {HTMLFormElement} */ (
    h('form', { class: 'card change-password', novalidate: true, 'aria-labelledby': 'password-title' }, current.wrap, fresh.wrap, button, formError)
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    current.show('');
    fresh.show('');
    formError.textContent = '';
    if (!current.input.value) {
      current.show(t('Type the password you use now.'));
      current.input.focus();
      return;
    }
    if (!fresh.input.value) {
      fresh.show(t('Type the new password you want.'));
      fresh.input.focus();
      return;
    }
    button.disabled = true;
    try {
      await api('PUT', '/api/v1/accounts/me/password', { current_password: current.input.value, new_password: fresh.input.value });
      app.flash(t('Your password is changed. Every other browser signed in to your account was signed out, and an email about the change is on its way to {value}.', { value: account?.email ?? 'you' }));
      app.navigate('/security', true);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'wrong_password') {
        current.show(t('That is not your current password. Check it and try again. If you have forgotten it, sign out and choose "Forgot password?" on the sign-in page.'));
        current.input.select();
      } else if (err instanceof ApiError && err.status === 429) {
        current.show(t('Too many wrong passwords were tried. {value}, then try again. Your password was not changed.', { value: waitWords(err.retryAfter) }));
        current.input.focus();
      } else if (err instanceof ApiError && err.code === 'password_rejected') {
        fresh.show(passwordRejectedWords(err));
        fresh.input.focus();
      } else {
        formError.textContent = troubleWords(err) ?? t('Your password was not changed. Try again in a moment.');
      }
    } finally {
      button.disabled = false;
    }
  });
  return h(
    'section',
    { 'aria-labelledby': 'password-title', class: 'password' },
    h('h2', { id: 'password-title', text: t('Change your password') }),
    h('p', { class: 'hint', text: t('Changing your password signs out every other browser signed in to your account. This one stays signed in.') }),
    form,
  );
}

/**
 * "Delete my account", with a confirmation step that asks for the password.
 * @param {import('../app.js').App} app
 */
function deleteSection(app) {
  const error = h('p', { class: 'error', role: 'alert' });
  const start = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'danger', text: t('Delete my account'), 'aria-expanded': 'false', 'aria-controls': 'delete-account-form' }));
  const password = /** @type {HTMLInputElement} */ (h('input', { id: 'delete-password', type: 'password', autocomplete: 'current-password', required: true }));
  const confirm = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'danger', text: t('Delete my account for good') }));
  const cancel = h('button', { type: 'button', text: t('Cancel') });
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      { id: 'delete-account-form', class: 'card confirm', hidden: true },
      h('p', { text: t("This deletes your account at once: your sessions, your devices' keys, your place in every household, and the messages you sent (from the server and the toys' queues). Households where you are the only member are deleted too. It cannot be undone; export your data first if you want to keep it.") }),
      h('div', { class: 'field' }, h('label', { for: 'delete-password', text: t('Your password, to confirm') }), password),
      h('div', { class: 'row' }, confirm, cancel),
      error,
    )
  );
  start.addEventListener('click', () => {
    form.hidden = false;
    start.hidden = true;
    start.setAttribute('aria-expanded', 'true');
    password.focus();
  });
  cancel.addEventListener('click', () => {
    form.hidden = true;
    password.value = '';
    error.textContent = '';
    start.setAttribute('aria-expanded', 'false');
    start.hidden = false;
    start.focus();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (!password.value) {
      error.textContent = t('Type your password to confirm.');
      password.focus();
      return;
    }
    confirm.disabled = true;
    try {
      await api('DELETE', '/api/v1/accounts/me', { password: password.value });
      const accountId = app.account?.id;
      const deviceId = app.device?.id;
      if (accountId) await forgetDevice(accountId, deviceId);
      app.signedOut(t('Your account is deleted, with the messages you sent. Goodbye from pawpost.'));
    } catch (err) {
      if (err instanceof ApiError && err.code === 'last_owner') {
        // The server names the household in its sentence: you are the last owner of "…".
        const named = /"((?:[^"\\]|\\.)*)"/.exec(err.detail)?.[1] ?? '';
        error.textContent = t("Not deleted: you are the last owner of {household}, which has other members. To hand over ownership, open that household's Family page and set another member's role to Owner (parent); or delete the household there first.", { household: named });
      } else if (err instanceof ApiError && err.code === 'wrong_password') {
        error.textContent = t('Not deleted: that password is wrong.');
        password.select();
      } else {
        error.textContent = t('Not deleted: {value}', { value: err instanceof Error ? err.message : String(err) });
      }
    } finally {
      confirm.disabled = false;
    }
  });
  return h(
    'section',
    { 'aria-labelledby': 'delete-title', class: 'danger-zone' },
    h('h2', { id: 'delete-title', text: t('Delete your account') }),
    start,
    form,
  );
}

/**
 * "Remove" for one of the account's other devices (a lost phone, an old browser), asked
 * twice. A parent's device then takes it out of the household keys.
 * @param {{ device_id: string, label: string }} d
 */
function removeDeviceButton(d) {
  const error = h('p', { class: 'error', role: 'alert' });
  const start = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'danger', text: t('Remove'), 'aria-label': t('Remove {label}', { label: d.label }) }));
  const yes = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'danger', text: t('Yes, remove {label}', { label: d.label }) }));
  const no = h('button', { type: 'button', text: t('Keep it') });
  const ask = h(
    'div',
    { class: 'card confirm', hidden: true },
    h('p', { text: t("{label} will no longer send or hear messages once a parent's device next opens pawpost. Do this for a lost or old device.", { label: d.label }) }),
    h('div', { class: 'row' }, yes, no),
  );
  start.addEventListener('click', () => {
    ask.hidden = false;
    start.hidden = true;
    yes.focus();
  });
  no.addEventListener('click', () => {
    ask.hidden = true;
    start.hidden = false;
    start.focus();
  });
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    error.textContent = '';
    try {
      await api('DELETE', `/api/v1/devices/${d.device_id}`);
      const li = yes.closest('li');
      li?.replaceChildren(h('p', { class: 'status', role: 'status', text: t('{label} is removed.', { label: d.label }) }));
    } catch (e) {
      error.textContent = t('Not removed: {value}', { value: e instanceof Error ? e.message : String(e) });
      yes.disabled = false;
    }
  });
  return h('div', { class: 'device-remove' }, start, ask, error);
}

/**
 * A sign-in named as a person would: "Chrome on Android", never the raw User-Agent.
 * @param {string} userAgent
 */
function sessionName(userAgent) {
  const { browser, system } = describeUserAgent(userAgent);
  if (browser && system) return t('{browser} on {platform}', { browser, platform: system });
  return browser ?? (system ? t('A browser on {platform}', { platform: system }) : t('Unknown browser'));
}

/**
 * "Sign out everywhere else", asked twice: ends every other sign-in of the account (a
 * lost phone, a shared computer); this browser stays signed in.
 */
function signOutOthers() {
  const result = h('p', { class: 'status', role: 'status' });
  const error = h('p', { class: 'error', role: 'alert' });
  const start = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'danger', text: t('Sign out everywhere else'), 'aria-expanded': 'false', 'aria-controls': 'sign-out-others' }));
  const yes = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'danger', text: t('Yes, sign out the others') }));
  const no = h('button', { type: 'button', text: t('Cancel') });
  const ask = h(
    'div',
    { id: 'sign-out-others', class: 'card confirm', hidden: true },
    h('p', { text: t('Every other phone, computer and browser signed in to your account is signed out at once; this one stays signed in. Your password and passkeys do not change: if you think someone knows your password, change it above.') }),
    h('div', { class: 'row' }, yes, no),
  );
  start.addEventListener('click', () => {
    ask.hidden = false;
    start.hidden = true;
    start.setAttribute('aria-expanded', 'true');
    yes.focus();
  });
  no.addEventListener('click', () => {
    ask.hidden = true;
    start.hidden = false;
    start.setAttribute('aria-expanded', 'false');
    start.focus();
  });
  yes.addEventListener('click', async () => {
    yes.disabled = true;
    error.textContent = '';
    try {
      const { ended } = await api('POST', '/api/v1/sessions/end-others');
      ask.hidden = true;
      result.textContent = t('{count} other sign-ins ended. Only this browser is signed in now.', { count: ended });
      for (const li of document.querySelectorAll('ul.sessions > li:not(.current)')) li.remove();
    } catch (e) {
      error.textContent = e instanceof Error ? e.message : String(e);
    } finally {
      yes.disabled = false;
    }
  });
  return h('div', { class: 'sign-out-others' }, start, ask, result, error);
}

/** @param {import('../app.js').App} app */
export async function securityView(app) {
  /** @type {[any[], any[], any[]]} */
  const [sessions, devices, households] = await Promise.all([
    api('GET', '/api/v1/sessions'),
    api('GET', '/api/v1/devices'),
    api('GET', '/api/v1/households'),
  ]);
  const sessionList = h(
    'ul',
    { class: 'sessions' },
    ...sessions.map((s) =>
      h('li', { class: s.current ? 'current' : undefined },
        h('strong', { class: 'session-name', text: sessionName(s.user_agent) }), s.current ? t(' (this session)') : null,
        h('div', { class: 'muted', text: t('from {address} · signed in {signedIn} · expires {expires}', { address: s.client_address || t('unknown address'), signedIn: formatTime(s.created_at), expires: formatTime(s.expires_at) }) }),
      ),
    ),
  );
  const deviceList = h(
    'ul',
    { class: 'devices' },
    ...devices.map((d) =>
      h('li', {},
        h('strong', { text: d.label }), d.device_id === app.device?.id ? t(' (this browser)') : null,
        h('div', { class: 'fingerprint' }, t('Fingerprint: '), h('code', { text: d.fingerprint })),
        h('div', { class: 'muted', text: t('added {when}', { when: formatTime(d.created_at) }) }),
        d.device_id === app.device?.id ? null : removeDeviceButton(d),
      ),
    ),
  );
  const activity = activitySections(app, households);
  const toyList = h('ul', { class: 'toys' });
  for (const hh of households.filter((x) => x.status === 'approved')) {
    /** @type {any[]} */
    let toys;
    try {
      toys = await api('GET', `/api/v1/households/${hh.id}/toys`);
    } catch {
      try {
        toys = (await api('GET', `/api/v1/households/${hh.id}/devices`)).filter((/** @type {any} */ d) => d.kind === 'toy');
      } catch {
        toys = [];
      }
    }
    for (const toy of toys) {
      toyList.append(
        h('li', {},
          h('strong', { text: t('{toy} in {household}', { toy: toy.label || t('Toy'), household: hh.name }) }), ' ',
          'online' in toy ? h('span', { class: `online-${toy.online ? 'yes' : 'no'}`, text: toy.online ? t('online') : t('offline') }) : null,
          h('div', { class: 'fingerprint' }, t('Fingerprint: '), h('code', { text: toy.fingerprint })),
        ),
      );
    }
  }
  const [recent, householdActivity] = await activity;
  const linking = await linkSection(app, devices, households);
  return h(
    'section',
    { class: 'security' },
    h('h1', { text: t('Security') }),
    app.account?.has_password === false ? noPasswordNotice() : passwordSection(app),
    await passkeysSection(app),
    await notificationSection(),
    h('section', { 'aria-labelledby': 'sessions-title' }, h('h2', { id: 'sessions-title', text: t('Where you are signed in') }), sessionList, sessions.length > 1 ? signOutOthers() : null),
    h('section', { 'aria-labelledby': 'devices-title' },
      h('h2', { id: 'devices-title', text: t('Your devices') }),
      h('p', { class: 'hint', text: t('Each browser keeps its own keys; its private keys never leave it. Compare fingerprints with your family to be sure nobody swapped keys.') }),
      app.device ? h('p', {}, t('This browser: '), h('code', { class: 'fingerprint', text: app.device.fingerprint })) : null,
      deviceList,
      linking,
    ),
    h('section', { 'aria-labelledby': 'toys-title' }, h('h2', { id: 'toys-title', text: t('Paired toys') }), toyList.childElementCount ? toyList : h('p', { text: t('No toy paired.') })),
    recent,
    householdActivity,
    exportSection(app),
    deleteSection(app),
  );
}
