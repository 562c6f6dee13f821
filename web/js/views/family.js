// Managing a household: members (approve, refuse, block, remove, roles), invitations,
// the toy, the child's name and picture, and the settings the roster carries.
import { api } from '../api.js';
import { forgetApprovals } from '../approval.js';
import { goodbyes } from '../farewell.js';
import { keysProblem, syncRoster } from '../household-keys.js';
import { MediaType } from '../mail.js';
import { bytesUuid, formatTime, h } from '../util.js';
import { loadHousehold, shareChildInfo } from './context.js';
import { onHouseholdChange } from '../live.js';
import { toyCard } from './toy-card.js';
import { phoneRelaySection } from './phone-relay.js';
import { formatRelative, t } from '../i18n.js';

const STATUS_LABEL = /** @type {Record<string, string>} */ ({ approved: t('approved'), pending: t('waiting for approval'), blocked: t('blocked') });
const ROLE_LABEL = /** @type {Record<string, string>} */ ({ owner: t('Owner (parent)'), guardian: t('Guardian (parent)'), family: t('Family') });
const MAX_AVATAR_BYTES = 512 * 1024;
/** How often the page looks whether the toy's paw confirmed a pairing. */
const PAIRING_POLL_MS = 1000;

/** @param {number} minutes */
const hhmm = (minutes) => `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
/** @param {string} text */
const minutesOf = (text) => {
  const [hrs, mins] = text.split(':').map(Number);
  return hrs * 60 + mins;
};

/**
 * @param {import('../app.js').App} app
 * @param {string} householdId
 */
export async function familyView(app, householdId) {
  const ctx = await loadHousehold(app, householdId);
  const me = app.account?.id;
  const status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const error = h('p', { class: 'error', role: 'alert' });
  /** The section the person last acted in (its heading's id): what they are told goes there. */
  let acting = '';

  /**
   * The status and error lines at the end of the section `where` on the page as shown
   * (made the first time), or the page's own when there is no such section.
   * @param {string} where
   */
  function notes(where) {
    const section = where ? document.querySelector(`section.family section[aria-labelledby="${CSS.escape(where)}"]`) : null;
    if (!section) return { status: document.querySelector('.family > .status') ?? status, error: document.querySelector('.family > .error') ?? error };
    let box = section.querySelector(':scope > .section-notes');
    if (!box) {
      box = h('div', { class: 'section-notes' }, h('p', { class: 'status', role: 'status', 'aria-live': 'polite' }), h('p', { class: 'error', role: 'alert' }));
      section.append(box);
    }
    return { status: /** @type {HTMLElement} */ (box.querySelector('.status')), error: /** @type {HTMLElement} */ (box.querySelector('.error')) };
  }

  /**
   * Says what went wrong beside what the person was doing.
   * @param {string} text
   */
  function complain(text) {
    const n = notes(acting);
    n.status.textContent = '';
    n.error.textContent = text;
  }

  /**
   * Runs a change, then publishes the roster that reflects it (owners), then redraws.
   * @param {string} done
   * @param {() => Promise<any>} change
   */
  async function act(done, change) {
    const where = acting;
    const here = notes(where);
    here.error.textContent = '';
    here.status.textContent = t('Working…');
    try {
      await change();
      let saved;
      if (ctx.signsRoster && app.device) {
        await syncRoster(householdId, app.device.keys);
        saved = done;
      } else {
        saved = t("{done} The toy learns of it when a parent's device next opens pawpost.", { done });
      }
      // Done is said only on the redrawn page: a form filled in before the redraw would
      // be replaced by an empty one, and what was typed lost.
      await redraw();
      notes(where).status.textContent = saved;
    } catch (e) {
      here.status.textContent = '';
      here.error.textContent = keysProblem(e);
    }
  }

  async function redraw() {
    const view = await familyView(app, householdId);
    const old = document.querySelector('section.family');
    if (old) old.replaceWith(view);
  }

  /** @param {string} accountId whether the household keys list an approved device of this person */
  const inKeys = (accountId) =>
    Boolean(ctx.signed?.roster.members.some((x) => x.status === 'approved' && x.role !== 'toy' && x.role !== 'recovery' && bytesUuid(x.accountId) === accountId));

  // Members.
  const memberBase = `/api/v1/households/${householdId}/members`;
  const rows = ctx.members.map((m) => {
    const name = m.display_name;
    const isMe = m.account_id === me;
    const actions = h('div', { class: 'row actions' });
    if (ctx.manages && !isMe) {
      /**
       * @param {string} label
       * @param {string} done
       * @param {() => Promise<any>} fn
       * @param {string} [cls]
       */
      const button = (label, done, fn, cls) =>
        h('button', { type: 'button', class: cls, text: label, 'aria-label': `${label} ${name}`, onclick: () => act(done, fn) });
      if (m.status === 'pending') {
        actions.append(
          button(t('Approve'), t('{name} is approved.', { name }), async () => {
            await api('POST', `${memberBase}/${m.account_id}/approve`);
            // The parent approves the person with the devices they have now; a device
            // they add later needs a certificate from one of these, or a parent's approval.
            if (!ctx.signsRoster || !app.device) return;
            /** @type {{ device_id: string, account_id: string | null }[]} */
            const listed = await api('GET', `/api/v1/households/${householdId}/devices`);
            const approveDevices = listed.filter((d) => d.account_id === m.account_id).map((d) => d.device_id);
            await syncRoster(householdId, app.device.keys, { approveDevices });
          }, 'primary'),
          button(t('Refuse'), t('{name} was refused.', { name }), () => api('DELETE', `${memberBase}/${m.account_id}`)),
        );
      } else if (m.status === 'approved') {
        actions.append(
          confirmBlock(name, () => act(t('{name} is blocked: the toy refuses their messages from now on.', { name }), () => api('POST', `${memberBase}/${m.account_id}/block`))),
          button(t('Remove'), t('{name} was removed.', { name }), () => api('DELETE', `${memberBase}/${m.account_id}`), 'danger'),
        );
        const select = /** @type {HTMLSelectElement} */ (
          h('select', { 'aria-label': t('Role of {name}', { name }) }, ...Object.entries(ROLE_LABEL).map(([v, l]) => h('option', { value: v, text: l, selected: v === m.role })))
        );
        select.addEventListener('change', () =>
          act(t('{name} is now {value}.', { name, value: ROLE_LABEL[select.value] }), () => api('PATCH', `${memberBase}/${m.account_id}`, { role: select.value })),
        );
        actions.append(select);
      } else if (m.status === 'blocked') {
        actions.append(
          // A block stays until a parent lifts it; removing a blocked member would change
          // nothing they could see, so only unblocking is offered.
          button(t('Unblock'), t('{name} is unblocked.', { name }), () => api('POST', `${memberBase}/${m.account_id}/unblock`)),
        );
      }
    }
    // Approved on the server is not yet approved for the toy: that takes household keys
    // that list one of their devices, signed by a parent's device.
    const signed = m.status !== 'approved' || inKeys(m.account_id);
    const statusText = signed ? (STATUS_LABEL[m.status] ?? m.status) : t("waiting for a parent's device to sign");
    const waiting = ctx.waiting.filter((d) => d.account_id === m.account_id).map((d) => {
      const approveBtn = ctx.signsRoster && app.device
        ? h('button', {
            type: 'button',
            text: t('Approve this device'),
            'aria-label': t('Approve the new device of {name}', { name }),
            onclick: () => act(t("{name}'s new device is approved.", { name }), () => syncRoster(householdId, /** @type {any} */ (app.device).keys, { approveDevices: [d.device_id] })),
          })
        : null;
      return h(
        'div',
        { class: 'device-waiting', dataset: { deviceId: d.device_id } },
        h('p', { text: t('A new device of {name} is waiting: {value}. Approve it only if {name2} tells you these are the digits it shows under Security:', { name, value: d.label || t('a browser'), name2: name }) }),
        h('code', { class: 'fingerprint', text: d.fingerprint ?? '' }),
        approveBtn,
      );
    });
    return h(
      'li',
      { class: `member member-${m.status}`, dataset: { accountId: m.account_id } },
      h('div', {}, h('strong', { class: 'member-name', text: name }), isMe ? t(' (you)') : null),
      m.email ? h('div', { class: 'muted', text: m.email }) : null,
      h('div', { class: 'muted member-status', text: `${ROLE_LABEL[m.role] ?? m.role} · ${statusText}` }),
      ...waiting,
      actions,
    );
  });
  const membersSection = h('section', { 'aria-labelledby': 'members-title' }, h('h2', { id: 'members-title', text: t('Family members') }), h('ul', { class: 'members' }, ...rows));

  const sections = [keysSection(ctx), membersSection].filter((x) => x !== null);
  if (ctx.manages) {
    // Invitations.
    const inviteOut = h('div', { class: 'invite-out' });
    const roleSel = /** @type {HTMLSelectElement} */ (h('select', { id: 'invite-role' }, h('option', { value: 'family', text: t('Family (relative)') }), h('option', { value: 'guardian', text: t('Guardian (second parent)') })));
    const inviteEmail = /** @type {HTMLInputElement} */ (h('input', { id: 'invite-email', type: 'email', autocomplete: 'off', 'aria-describedby': 'invite-email-result' }));
    const inviteEmailResult = h('span', { id: 'invite-email-result', role: 'status', class: 'saved' });
    const inviteBtn = h('button', { type: 'button', class: 'primary', text: t('Create invitation link') });
    inviteBtn.addEventListener('click', async () => {
      error.textContent = '';
      inviteEmailResult.textContent = '';
      inviteEmailResult.classList.remove('error');
      const to = inviteEmail.value.trim();
      try {
        const inv = await api('POST', `/api/v1/households/${householdId}/invitations`, to ? { role: roleSel.value, email: to } : { role: roleSel.value });
        if (to) inviteEmailResult.textContent = t('We are emailing the invitation to {to}, unless they turned such emails off; the link below works either way.', { to });
        const input = /** @type {HTMLInputElement} */ (h('input', { id: 'invite-url', readonly: true, value: inv.url, 'aria-label': t('Invitation link') }));
        const copy = h('button', { type: 'button', text: t('Copy link') });
        copy.addEventListener('click', async () => {
          try {
            await navigator.clipboard.writeText(inv.url);
            copy.textContent = t('Copied');
          } catch {
            input.select();
          }
        });
        inviteOut.replaceChildren(
          h('p', { text: t('Send this link to your relative; it works once and expires {when} ({date}). You approve them after they join.', { when: formatRelative(inv.expires_at), date: formatTime(inv.expires_at) }) }),
          h('div', { class: 'row' }, input, copy),
        );
        input.focus();
        input.select();
      } catch (e) {
        if (/** @type {{ code?: string }} */ (e)?.code === 'invalid_email') {
          inviteEmailResult.classList.add('error');
          inviteEmailResult.textContent = t('This email address does not look right. Check it, or leave it empty and send the link yourself.');
          inviteEmail.focus();
        } else {
          complain(e instanceof Error ? e.message : String(e));
        }
      }
    });
    sections.push(
      h('section', { 'aria-labelledby': 'invite-title' }, h('h2', { id: 'invite-title', text: t('Invite a relative') }),
        h('div', { class: 'row' }, h('label', { for: 'invite-role', text: t('Role') }), roleSel),
        h('div', { class: 'row' }, h('label', { for: 'invite-email', text: t('Their email address (optional)') }), inviteEmail, inviteEmailResult),
        h('div', { class: 'row' }, inviteBtn),
        inviteOut),
    );

    // Toys.
    const toyList = h('ul', { class: 'toys' });
    /** @type {any[]} */
    let toys;
    try {
      toys = await api('GET', `/api/v1/households/${householdId}/toys`);
    } catch {
      toys = ctx.devices.filter((d) => d.kind === 'toy');
    }
    for (const toy of toys) toyList.append(await toyCard(app, ctx, toy, act));
    const codeInput = /** @type {HTMLInputElement} */ (h('input', { id: 'toy-code', inputmode: 'numeric', autocomplete: 'off', pattern: '[0-9 ]*', maxlength: '11', 'aria-describedby': 'toy-code-hint' }));
    const pairForm = /** @type {HTMLFormElement} */ (h('form', { class: 'row' }, h('label', { for: 'toy-code', text: t('Code the toy speaks') }), codeInput, h('button', { type: 'submit', class: 'primary', text: t('Add toy') })));
    pairForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const code = codeInput.value.replace(/\D/g, '');
      if (code.length !== 6) {
        complain(t('The code has 6 digits: hold the paw until the toy speaks it.'));
        codeInput.focus();
        return;
      }
      act(t('The toy is paired.'), async () => {
        const claim = await api('POST', `/api/v1/households/${householdId}/toys`, { code });
        status.textContent = t('The toy will now say the number {value}. If it says the same number, press its paw once. If it says a different number, do not press its paw: hold it until it speaks a new code, and start again.', { value: claim.confirmation.split('').join(' ') });
        const deadline = Date.parse(claim.confirm_by);
        for (;;) {
          const listed = await api('GET', `/api/v1/households/${householdId}/toys`);
          if (listed.some((/** @type {any} */ t) => t.device_id === claim.device_id)) return;
          if (Date.now() > deadline) throw new Error(t("The toy's paw was not pressed in time. Hold its paw until it speaks a new code, then try again."));
          await new Promise((done) => setTimeout(done, PAIRING_POLL_MS));
        }
      });
    });
    sections.push(
      h('section', { 'aria-labelledby': 'toy-title' },
        h('h2', { id: 'toy-title', text: t('Toy') }),
        toys.length ? toyList : h('p', { text: t('No toy yet.') }),
        // Once a toy is paired, adding another waits behind a button.
        ...addToy(toys.length > 0, [
          h('p', { id: 'toy-code-hint', class: 'hint', text: t("Hold the toy's paw until it speaks six digits, then type them here within 10 minutes. The toy then says a three-digit number: if it is the number shown here, press its paw once.") }),
          pairForm,
        ]),
        phoneRelaySection(soleToyName(toyList)),
      ),
    );

    // The child.
    const childInput = /** @type {HTMLInputElement} */ (h('input', { id: 'child-name', value: ctx.childName ?? '', maxlength: '100' }));
    const childForm = /** @type {HTMLFormElement} */ (h('form', { class: 'row' }, h('label', { for: 'child-name', text: t("Child's name") }), childInput, h('button', { type: 'submit', text: t('Save name') })));
    childForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const name = childInput.value.trim();
      if (!name) return;
      act(t('The name is saved, encrypted for the family.'), () => shareChildInfo(app, ctx, MediaType.TEXT, new TextEncoder().encode(name)));
    });
    const photoInput = /** @type {HTMLInputElement} */ (h('input', { id: 'child-photo', type: 'file', accept: 'image/png,image/jpeg,image/webp' }));
    photoInput.addEventListener('change', () => {
      const file = photoInput.files?.[0];
      if (!file) return;
      if (file.size > MAX_AVATAR_BYTES) {
        complain(t('Choose a picture under 512 KB.'));
        return;
      }
      act(t('The picture is saved, encrypted for the family.'), async () => shareChildInfo(app, ctx, MediaType.IMAGE, new Uint8Array(await file.arrayBuffer())));
    });
    sections.push(
      h(
        'section',
        { 'aria-labelledby': 'child-title' },
        h('h2', { id: 'child-title', text: t('Your child') }),
        // The name and picture are sealed on this device for the household's devices: a
        // browser outside the household keys could seal them for nobody.
        ...(ctx.inRoster
          ? [
              ctx.childName === null && ctx.messages.some((m) => m.media_type === MediaType.TEXT)
                ? h('p', { class: 'notice child-name-unreadable', text: t("Your child's name was saved on a device this browser cannot read. Type it again so that this browser and new members see it.") })
                : null,
              childForm,
              h('div', { class: 'row' }, h('label', { for: 'child-photo', text: t('Picture') }), photoInput),
            ]
          : [h('p', { class: 'hint', text: t("This browser cannot change your child's name or picture until the household keys include it (see above).") })]),
      ),
    );

    // Settings (in the signed roster).
    const s = ctx.signed?.roster.settings;
    if (s) {
      const quietOn = /** @type {HTMLInputElement} */ (h('input', { id: 'quiet-on', type: 'checkbox', checked: Boolean(s.quietHours) }));
      const quietFrom = /** @type {HTMLInputElement} */ (h('input', { id: 'quiet-from', type: 'time', value: hhmm(s.quietHours?.startMinute ?? 19 * 60) }));
      const quietTo = /** @type {HTMLInputElement} */ (h('input', { id: 'quiet-to', type: 'time', value: hhmm(s.quietHours?.endMinute ?? 7 * 60) }));
      const retention = /** @type {HTMLInputElement} */ (h('input', { id: 'retention', type: 'number', min: '1', max: '365', value: String(s.retentionDays) }));
      const approval = /** @type {HTMLInputElement} */ (h('input', { id: 'approval', type: 'checkbox', checked: s.parentApprovesBeforePlay }));
      const settingsForm = /** @type {HTMLFormElement} */ (
        h('form', { class: 'card settings' },
          h('div', { class: 'check' }, quietOn, h('label', { for: 'quiet-on', text: t('Quiet hours: the toy stays silent') })),
          h('div', { class: 'row quiet-times' }, h('span', { class: 'pair' }, h('label', { for: 'quiet-from', text: t('from') }), quietFrom), h('span', { class: 'pair' }, h('label', { for: 'quiet-to', text: t('to') }), quietTo)),
          h('div', { class: 'row' }, h('label', { for: 'retention', text: t('Delete played messages after (days)') }), retention),
          h('div', { class: 'check' }, approval, h('label', { for: 'approval', text: t('A parent approves each message before the toy plays it') })),
          ctx.signsRoster ? h('button', { type: 'submit', class: 'primary', text: t('Save settings') }) : h('p', { class: 'hint', text: t('Only an owner can change these: they are signed into the household keys.') }),
        )
      );
      if (!ctx.signsRoster) for (const el of settingsForm.querySelectorAll('input')) el.setAttribute('disabled', '');
      settingsForm.addEventListener('submit', (e) => {
        e.preventDefault();
        const days = Number(retention.value);
        const from = minutesOf(quietFrom.value);
        const to = minutesOf(quietTo.value);
        if (!Number.isInteger(days) || days < 1 || days > 365) {
          complain(t('Keep messages between 1 and 365 days.'));
          retention.focus();
          return;
        }
        if (quietOn.checked && (Number.isNaN(from) || Number.isNaN(to) || from === to)) {
          complain(t('Quiet hours need a start and an end that differ.'));
          quietFrom.focus();
          return;
        }
        /** @type {import('../crypto/roster.js').HouseholdSettings} */
        const settings = {
          ...s,
          quietHours: quietOn.checked ? { startMinute: from, endMinute: to } : null,
          retentionDays: days,
          parentApprovesBeforePlay: approval.checked,
        };
        act(t('Settings saved.'), async () => {
          if (!app.device) throw new Error(t('This browser has no keys.'));
          await syncRoster(householdId, app.device.keys, { settings });
        });
      });
      sections.push(h('section', { 'aria-labelledby': 'settings-title' }, h('h2', { id: 'settings-title', text: t('Settings') }), settingsForm));
    }
  }

  if (ctx.isOwner) sections.push(deleteHouseholdSection(app, ctx.household));

  const view = h(
    'section',
    { class: 'family' },
    h('h1', { text: t('Family and settings') }),
    h('p', { class: 'household-line' }, h('strong', { text: ctx.household.name }), ' · ', h('a', { href: `/households/${householdId}`, 'data-link': true, text: t('← Messages') })),
    sectionNav(sections),
    status,
    error,
    ...sections,
  );
  for (const kind of ['click', 'submit', 'change']) {
    view.addEventListener(
      kind,
      (e) => {
        const section = e.target instanceof Element ? e.target.closest('section[aria-labelledby]') : null;
        if (section && section !== view) acting = section.getAttribute('aria-labelledby') ?? '';
      },
      true,
    );
  }
  // Someone who joins while the page is open shows up at once, waiting for approval
  // (live.js). Changes made on this page redraw it themselves, and a redraw never takes
  // away a field being filled in.
  const listed = new Set(ctx.members.map((m) => m.account_id));
  onHouseholdChange(app, householdId, async (change) => {
    if (!view.isConnected || change.kind !== 'member' || !change.account || listed.has(change.account)) return;
    const focused = document.activeElement;
    if (focused && view.contains(focused) && focused.matches('input:not([readonly]):not([type=checkbox]):not([type=radio]), textarea:not([readonly]), select')) return;
    listed.add(change.account);
    await redraw();
  });
  return view;
}

/**
 * The page's sections as a row of links, each one tap away on a phone: it scrolls to
 * the section and moves the focus to its heading (without changing the address, which
 * would redraw the page).
 * @param {HTMLElement[]} sections
 */
function sectionNav(sections) {
  const links = sections.flatMap((section) => {
    const id = section.getAttribute('aria-labelledby');
    const heading = id ? section.querySelector(`#${CSS.escape(id)}`) : null;
    if (!id || !(heading instanceof HTMLElement)) return [];
    heading.tabIndex = -1;
    const link = h('a', { href: `#${id}`, text: heading.textContent ?? '' });
    link.addEventListener('click', (e) => {
      e.preventDefault();
      const target = document.getElementById(id);
      target?.scrollIntoView({ block: 'start' });
      target?.focus({ preventScroll: true });
    });
    return [h('li', {}, link)];
  });
  return h('nav', { class: 'page-sections', 'aria-label': t('Parts of this page') }, h('ul', {}, ...links));
}

/**
 * The name of the household's only toy, as its card shows it, for the phone relay to say
 * whom it relays for; '' when there are several toys or the toy has no name yet.
 * @param {HTMLElement} toyList
 */
function soleToyName(toyList) {
  if (toyList.childElementCount !== 1) return '';
  const name = toyList.querySelector('.toy-name')?.textContent ?? '';
  return name === t('Toy') ? '' : name;
}

/**
 * The pairing form, shown at once for a household without a toy, and behind "Add another
 * toy" once one is paired.
 * @param {boolean} collapsed
 * @param {HTMLElement[]} parts
 * @returns {HTMLElement[]}
 */
function addToy(collapsed, parts) {
  if (!collapsed) return parts;
  const panel = h('div', { id: 'add-toy', hidden: true }, ...parts);
  const open = h('button', { type: 'button', text: t('Add another toy'), 'aria-expanded': 'false', 'aria-controls': 'add-toy' });
  open.addEventListener('click', () => {
    panel.hidden = false;
    open.hidden = true;
    open.setAttribute('aria-expanded', 'true');
    panel.querySelector('input')?.focus();
  });
  return [open, panel];
}

/**
 * "Block", asked twice: what it does, and that only parents see it.
 * @param {string} name
 * @param {() => void} block
 */
function confirmBlock(name, block) {
  const start = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'danger', text: t('Block'), 'aria-label': t('Block {name}', { name }), 'aria-expanded': 'false' }));
  const yes = h('button', { type: 'button', class: 'danger', text: t('Yes, block {name}', { name }) });
  const no = h('button', { type: 'button', text: t('Cancel') });
  const ask = h(
    'div',
    { class: 'card confirm block-confirm', hidden: true },
    h('p', { text: t('Block {name}? The toy will refuse their messages from now on, and they can no longer send or hear anything in this household. Only parents see that they are blocked. You can unblock them later.', { name }) }),
    h('div', { class: 'row' }, yes, no),
  );
  start.addEventListener('click', () => {
    ask.hidden = false;
    start.setAttribute('aria-expanded', 'true');
    yes.focus();
  });
  no.addEventListener('click', () => {
    ask.hidden = true;
    start.setAttribute('aria-expanded', 'false');
    start.focus();
  });
  yes.addEventListener('click', block);
  return h('span', { class: 'block' }, start, ask);
}

/**
 * Who can look after the household's keys: a notice when this browser cannot, the
 * recovery code, and a nudge to add a second owner device when there is only one.
 * @param {import('./context.js').HouseholdContext} ctx
 * @returns {HTMLElement | null}
 */
function keysSection(ctx) {
  if (!ctx.isOwner) return null;
  const name = ctx.household.name;
  const items = [];
  if (!ctx.signsRoster) {
    items.push(
      h('p', { class: 'notice', text: t("This browser cannot change {name}'s household keys yet, so approvals, blocks and settings made here do not reach the toy.", { name }) }),
      ctx.recovery
        ? h('p', {}, h('a', { href: `/households/${ctx.id}/recovery`, 'data-link': true, text: t('Enter your recovery code') }), t(' to look after the household from this browser.'))
        : h('p', { text: t('Open pawpost on a device you used before for this household, or ask its other parent to approve this browser.') }),
    );
  } else {
    const ownerDevices = ctx.signed?.roster.members.filter((m) => m.role === 'owner' && m.status === 'approved') ?? [];
    if (ownerDevices.length === 1) {
      items.push(
        h('p', { class: 'notice single-owner', text: t('Only this device can approve people and change settings for {name}. Add a second, in case this one is lost: make the other parent an Owner below, or sign in on your other phone or computer and link it from Security.', { name }) }),
      );
    }
    items.push(
      ctx.recovery
        ? h('p', {}, t('Your household has a recovery code. '), h('a', { href: `/households/${ctx.id}/recovery`, 'data-link': true, text: t('Make a new recovery code') }), t(' if you lost it.'))
        : h('p', { class: 'notice no-recovery' }, t('{name} has no recovery code yet: without one, losing this device can lock you out. ', { name }), h('a', { href: `/households/${ctx.id}/recovery`, 'data-link': true, text: t('Make a recovery code') })),
    );
  }
  return h('section', { 'aria-labelledby': 'keys-title', class: 'keys' }, h('h2', { id: 'keys-title', text: t('Looking after the household') }), ...items);
}

/**
 * "Delete this household" (owners), confirmed by typing the household's name.
 * @param {import('../app.js').App} app
 * @param {{ id: string, name: string }} household
 */
function deleteHouseholdSection(app, household) {
  const error = h('p', { class: 'error', role: 'alert' });
  const start = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'danger', text: t('Delete this household…'), 'aria-expanded': 'false', 'aria-controls': 'delete-household-form' }));
  const typed = /** @type {HTMLInputElement} */ (h('input', { id: 'delete-household-name', type: 'text', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'delete-household-hint' }));
  const confirm = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'danger', text: t('Delete this household'), disabled: true }));
  const cancel = h('button', { type: 'button', text: t('Cancel') });
  const form = /** @type {HTMLFormElement} */ (
    h(
      'form',
      { id: 'delete-household-form', class: 'card confirm', hidden: true },
      h('p', { text: t("Deleting the household removes it for every member at once: their places in it, invitations, the household keys and every message, from the server and the toys' queues. Its toys forget this family and can be set up again. It cannot be undone.") }),
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'delete-household-name', text: t("Type the household's name to confirm") }),
        typed,
        h('p', { id: 'delete-household-hint', class: 'hint' }, t('Its name is '), h('strong', { class: 'household-name', text: household.name }), '.'),
      ),
      h('div', { class: 'row' }, confirm, cancel),
      error,
    )
  );
  const matches = () => typed.value.trim() === household.name.trim();
  typed.addEventListener('input', () => {
    confirm.disabled = !matches();
  });
  start.addEventListener('click', () => {
    form.hidden = false;
    start.hidden = true;
    start.setAttribute('aria-expanded', 'true');
    typed.focus();
  });
  cancel.addEventListener('click', () => {
    form.hidden = true;
    typed.value = '';
    confirm.disabled = true;
    error.textContent = '';
    start.setAttribute('aria-expanded', 'false');
    start.hidden = false;
    start.focus();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    if (!matches()) {
      error.textContent = t("The name you typed is not the household's name.");
      return;
    }
    confirm.disabled = true;
    try {
      // Each toy gets this owner device's signed goodbye, so that it forgets the family.
      await api('DELETE', `/api/v1/households/${household.id}`, { leave: await goodbyes(app.device, household.id) });
      localStorage.removeItem(`pawpost.roster.${household.id}`);
      forgetApprovals(household.id);
      app.flash(t('{name} is deleted, with all its messages.', { name: household.name }));
      app.navigate('/', true);
    } catch (err) {
      error.textContent = t('Not deleted: {value}', { value: err instanceof Error ? err.message : String(err) });
      confirm.disabled = !matches();
    }
  });
  return h(
    'section',
    { 'aria-labelledby': 'delete-household-title', class: 'danger-zone' },
    h('h2', { id: 'delete-household-title', text: t('Delete this household') }),
    start,
    form,
  );
}
