// One household: the child's name and picture, the recorder, and the messages with their
// "delivered" / "heard" / "not played" state; replies from the toy are opened and played here.
import { api, ApiError } from '../api.js';
import { approvalState, approveForToy } from '../approval.js';
import { MediaType, sendMessage } from '../mail.js';
import { recorderPanel } from '../recorder.js';
import { bytesUuid, formatDuration, formatTime, h } from '../util.js';
import { isUnread, loadHousehold, openVoice, receipt, senderName, unreadCount } from './context.js';
import { lang, t } from '../i18n.js';
import { liveOpen, onHouseholdChange } from '../live.js';

/** How often the page refetches anyway while its live stream is open (it misses nothing, but a proxy may hold events back). */
const FALLBACK_REFRESH_MS = 30000;
/** How often the page refetches when no live stream is open. */
const REFRESH_MS = 4000;

const clockFormat = new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : lang, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
/**
 * A time of day in this page's language and local time ("07:00").
 * @param {string} iso
 */
const formatClock = (iso) => clockFormat.format(new Date(iso));

/** Why the toy will never play a message, in the sender's words, by the toy's reason. */
const REFUSAL_TEXT = /** @type {Record<string, string>} */ ({
  sender_blocked: t('a parent changed who can send to the toy'),
  unknown_sender: t('a parent changed who can send to the toy'),
  bad_media: t('the toy could not play this recording'),
  undecryptable: t('the toy could not open it'),
  not_paired: t('the toy was reset'),
});

/**
 * Where a message stands with the toy (or, without one, the other recipients): for its
 * sender, and for parents. "held" is the server's word that the toy has it and the
 * household's quiet hours hold now (the toy plays nothing before they end).
 * @param {import('../app.js').App} app
 * @param {import('./context.js').HouseholdContext} ctx
 * @param {any} m
 * @returns {{ state: 'sent' | 'delivered' | 'held' | 'heard' | 'refused', text: string }}
 */
function deliveryState(app, ctx, m) {
  const toyIds = new Set(ctx.devices.filter((d) => d.kind === 'toy').map((d) => d.device_id));
  const others = m.recipients.filter((/** @type {any} */ r) => r.device_id !== app.device?.id);
  const toys = others.filter((/** @type {any} */ r) => toyIds.has(r.device_id));
  const watch = toys.length ? toys : others;
  if (watch.some((/** @type {any} */ r) => r.played_at)) return { state: 'heard', text: toys.length ? t('played on the toy') : t('heard') };
  const refused = toys.find((/** @type {any} */ r) => r.refused_at);
  if (refused && toys.every((/** @type {any} */ r) => r.refused_at)) {
    return { state: 'refused', text: t('Not played: {value}', { value: REFUSAL_TEXT[refused.refusal] ?? t('the toy refused it') }) };
  }
  const held = toys.find((/** @type {any} */ r) => r.held_until && Date.parse(r.held_until) > Date.now());
  if (held) return { state: 'held', text: t('held for quiet hours until {time}', { time: formatClock(held.held_until) }) };
  if (watch.some((/** @type {any} */ r) => r.delivered_at)) return { state: 'delivered', text: t('delivered') };
  return { state: 'sent', text: t('sent') };
}

/**
 * Shows the sender's message state in `el`.
 * @param {HTMLElement} el
 * @param {{ state: string, text: string }} s
 */
function showState(el, s) {
  el.textContent = s.text;
  el.dataset.state = s.state;
  el.className = `state state-${s.state}`;
  return el;
}

/** What a blocked member's page says. */
const BLOCKED_TEXT = t('A parent of this household has blocked you: you can no longer send or hear messages here. If you think this is a mistake, talk to them.');

const APPROVAL_TEXT = /** @type {Record<string, string>} */ ({
  waiting: t("waiting for a parent's approval"),
  approved: t('approved'),
});

/**
 * The approval badge of a message (empty when no approval is involved).
 * @param {import('./context.js').HouseholdContext} ctx
 * @param {any} m
 * @param {HTMLElement} [el] updated in place if given
 */
function approvalBadge(ctx, m, el = h('span', { class: 'approval' })) {
  const state = approvalState(ctx, m);
  el.className = state ? `approval approval-${state}` : 'approval';
  el.textContent = state ? APPROVAL_TEXT[state] : '';
  if (state) el.dataset.approval = state;
  else delete el.dataset.approval;
  return el;
}

/**
 * @param {import('../app.js').App} app
 * @param {import('./context.js').HouseholdContext} ctx
 * @param {any} m
 * @param {(text: string) => void} announce
 * @param {() => void} onRead called once this person played it
 */
function messageItem(app, ctx, m, announce, onRead) {
  const mine = m.sender_device === app.device?.id;
  const forMe = m.recipients.some((/** @type {any} */ r) => r.device_id === app.device?.id);
  const myReceipt = m.recipients.find((/** @type {any} */ r) => r.device_id === app.device?.id);
  const unread = isUnread(app, m, ctx.devices);
  const toyIds = new Set(ctx.devices.filter((d) => d.kind === 'toy').map((d) => d.device_id));
  // Parents see where every message to the toy stands, not only their own.
  const showsState = mine || (ctx.manages && m.recipients.some((/** @type {any} */ r) => toyIds.has(r.device_id)));
  const player = h('div', { class: 'player' });
  const error = h('p', { class: 'error', role: 'alert' });
  const who = mine ? t('You') : senderName(ctx, m);
  const playBtn = /** @type {HTMLButtonElement} */ (
    h('button', {
      type: 'button',
      class: 'play',
      text: t('Play'),
      'aria-label': t('Play the message from {who}, {value}', { who, value: formatDuration(m.duration_ms) }),
    })
  );
  playBtn.addEventListener('click', async () => {
    playBtn.disabled = true;
    error.textContent = '';
    // A refresh while the message opens keeps this item (and so one player only).
    item.dataset.player = 'open';
    try {
      const ogg = await openVoice(app, ctx, m);
      const url = URL.createObjectURL(new Blob([/** @type {BlobPart} */ (ogg)], { type: 'audio/ogg' }));
      const audio = /** @type {HTMLAudioElement} */ (h('audio', { controls: true, src: url, 'aria-label': t('Message from {who}', { who }) }));
      player.replaceChildren(audio);
      // The player's own controls replay it.
      playBtn.hidden = true;
      audio.play().catch(() => {});
      if (!mine && forMe) {
        await receipt(app, m.message_id, 'played');
        if (myReceipt) myReceipt.played_at = new Date().toISOString();
        item.classList.remove('unread');
        badge.remove();
        onRead();
      }
    } catch (e) {
      delete item.dataset.player;
      error.textContent = t('This message cannot be played: {value}', { value: e instanceof Error ? e.message : String(e) });
      playBtn.disabled = false;
    }
  });
  const badge = h('span', { class: 'badge', text: t('new') });
  const approval = approvalBadge(ctx, m);
  // Owners and guardians whose device is in the roster can release a held message: the
  // toy checks the signature against the roster.
  const canApprove = ctx.manages && ctx.inRoster && app.device && approval.dataset.approval === 'waiting';
  const approveBtn = canApprove
    ? /** @type {HTMLButtonElement} */ (
        h('button', {
          type: 'button',
          class: 'primary approve',
          text: t('Approve for the toy'),
          'aria-label': t('Approve for the toy: the message from {who}, {value}', { who, value: formatDuration(m.duration_ms) }),
        })
      )
    : null;
  approveBtn?.addEventListener('click', async () => {
    approveBtn.disabled = true;
    error.textContent = '';
    try {
      const listed = new Set(ctx.messages.map((x) => x.message_id));
      await approveForToy(/** @type {import('../device.js').ThisDevice} */ (app.device), ctx.id, m.message_id, listed);
      approvalBadge(ctx, m, approval);
      approveBtn.remove();
      announce(t('The message from {who} is approved: the toy can play it now.', { who }));
    } catch (e) {
      error.textContent = t('Not approved: {value}', { value: e instanceof Error ? e.message : String(e) });
      approveBtn.disabled = false;
    }
  });
  const item = h(
    'li',
    { class: `message${unread ? ' unread' : ''}${mine ? ' mine' : ''}`, dataset: { messageId: m.message_id } },
    h(
      'div',
      { class: 'meta' },
      h('strong', { class: 'sender', text: who }),
      ' ',
      h('span', { class: 'muted', text: `${formatTime(m.created_at)} · ${formatDuration(m.duration_ms)}` }),
      ' ',
      unread ? badge : null,
      showsState ? showState(h('span'), deliveryState(app, ctx, m)) : null,
      ' ',
      approval,
    ),
    h(
      'div',
      { class: 'row' },
      // A message is sealed for the devices in the household keys when it was sent: a
      // browser added later cannot open it, and says so instead of offering Play.
      mine || forMe ? playBtn : h('span', { class: 'muted not-for-here', text: t('Sent before this browser was added: it can be heard on the devices of that time.') }),
      approveBtn,
    ),
    player,
    error,
  );
  return item;
}

/**
 * Why this browser cannot send yet, and what to do about it.
 * @param {import('../app.js').App} app
 * @param {import('./context.js').HouseholdContext} ctx
 */
function notInKeys(app, ctx) {
  if (ctx.rosterError) return h('p', { class: 'notice', role: 'status', text: ctx.rosterError });
  const mine = app.device ? ctx.devices.filter((d) => d.account_id === app.account?.id && d.device_id !== app.device?.id) : [];
  const me = app.account?.id;
  const signedIn = ctx.signed?.roster.members.some((m) => m.status === 'approved' && m.role !== 'toy' && m.role !== 'recovery' && bytesUuid(m.accountId) === me);
  if (!ctx.isOwner && !signedIn) {
    // Approved on the server, not yet in the keys: a parent's device adds them next time.
    return h('p', {
      class: 'notice not-in-keys',
      role: 'status',
      text: t("A parent approved you. A parent's phone or computer still has to add you to the household keys; then you can send and hear messages here."),
    });
  }
  const steps = [];
  if (ctx.isOwner && ctx.recovery) {
    steps.push(
      h('li', {}, h('a', { href: `/households/${ctx.id}/recovery`, 'data-link': true, text: t('Enter your recovery code') }), t(': the paper you printed or wrote down when you set up the household.')),
    );
  }
  if (mine.length) {
    steps.push(h('li', {}, t('Or link this browser from a device you used before: open '), h('a', { href: '/security', 'data-link': true, text: t('Security') }), t(' here to see its link code.')));
  }
  steps.push(h('li', { text: ctx.isOwner ? t("Or ask the household's other parent to approve this browser on their Family page.") : t('Or ask a parent of the household to approve this browser on their Family page.') }));
  return h(
    'div',
    { class: 'notice not-in-keys', role: 'status' },
    h('p', { text: t('This browser cannot send or open messages here yet: the household keys do not include it.') }),
    h('ul', {}, ...steps),
  );
}

/**
 * Shows the page again when this person's standing in the household is no longer
 * `status` (a parent approved them, blocked them or lifted a block).
 * @param {import('../app.js').App} app
 * @param {string} householdId
 * @param {string} status
 * @param {import('../live.js').Change} change
 */
async function showAgainIfChanged(app, householdId, status, change) {
  if (change.kind !== 'open' && change.kind !== 'member') return;
  /** @type {any[]} */
  const mine = await api('GET', '/api/v1/households');
  const now = mine.find((x) => x.id === householdId);
  if (now?.status !== status && location.pathname === `/households/${householdId}`) {
    app.navigate(location.pathname + location.search, true);
  }
}

/**
 * @param {import('../app.js').App} app
 * @param {string} householdId
 */
export async function householdView(app, householdId) {
  /** @type {import('./context.js').HouseholdContext} */
  let ctx;
  try {
    ctx = await loadHousehold(app, householdId);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) throw e;
    return h(
      'section',
      {},
      h('h1', { text: t('Household not found') }),
      h('p', { class: 'notice', role: 'status', text: t('This household does not exist, or you are not in it any more: an owner may have deleted it, or a parent removed you.') }),
      h('p', {}, h('a', { href: '/', 'data-link': true, text: t('Back to your households') })),
    );
  }
  const hh = ctx.household;
  const title = () => (ctx.childName ? t('Messages with {childName}', { childName: ctx.childName }) : hh.name);
  if (hh.status === 'pending' || hh.status === 'blocked') {
    // The page turns into the household the moment a parent approves (or lifts a block).
    onHouseholdChange(app, householdId, (change) => showAgainIfChanged(app, householdId, hh.status, change));
  }
  if (hh.status === 'pending') {
    return h('section', {}, h('h1', { text: hh.name }), h('p', { class: 'notice', role: 'status', text: t('You have joined. A parent of this household has to approve you before you can send or hear messages.') }));
  }
  if (hh.status === 'blocked') {
    return h('section', {}, h('h1', { text: hh.name }), h('p', { class: 'notice', role: 'status', text: BLOCKED_TEXT }));
  }

  const avatarImg = h('span', { class: 'avatar-slot' });
  /** @type {string | null} */
  let avatarUrl = null;
  const showAvatar = () => {
    if (!ctx.avatar) return;
    if (avatarUrl) URL.revokeObjectURL(avatarUrl);
    avatarUrl = URL.createObjectURL(new Blob([/** @type {BlobPart} */ (ctx.avatar)]));
    avatarImg.replaceChildren(h('img', { class: 'avatar', src: avatarUrl, alt: ctx.childName ? t("{childName}'s picture", { childName: ctx.childName }) : t("The child's picture") }));
  };
  showAvatar();
  const heading = h('h1', { text: title() });
  const unreadNote = h('p', { class: 'muted', 'aria-live': 'polite' });
  const list = h('ul', { class: 'messages', 'aria-label': t('Messages') });
  const refreshError = h('p', { class: 'error', role: 'alert' });
  const approvalStatus = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  /** @param {string} text */
  const announce = (text) => {
    approvalStatus.textContent = text;
  };

  function renderList() {
    /** @type {Set<string>} */
    const openPlayers = new Set();
    for (const li of list.querySelectorAll('li.message')) {
      if (li instanceof HTMLElement && li.dataset.player) openPlayers.add(li.dataset.messageId ?? '');
    }
    const voices = ctx.messages
      .filter((m) => m.media_type === MediaType.OGG_OPUS)
      .sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    // Keep items with a player open: rebuilding them would stop the audio.
    const items = voices.map((m) => {
      const existing = openPlayers.has(m.message_id) ? list.querySelector(`li[data-message-id="${CSS.escape(m.message_id)}"]`) : null;
      if (existing) {
        const stateEl = existing.querySelector('.state');
        if (stateEl instanceof HTMLElement) showState(stateEl, deliveryState(app, ctx, m));
        if (!isUnread(app, m, ctx.devices)) {
          existing.classList.remove('unread');
          existing.querySelector('.badge')?.remove();
        }
        const approvalEl = existing.querySelector('.approval');
        if (approvalEl instanceof HTMLElement) approvalBadge(ctx, m, approvalEl);
        if (!approvalEl?.textContent) existing.querySelector('button.approve')?.remove();
        return existing;
      }
      return messageItem(app, ctx, m, announce, showUnread);
    });
    list.replaceChildren(...items);
    showUnread();
  }

  function showUnread() {
    const voices = ctx.messages.filter((m) => m.media_type === MediaType.OGG_OPUS).length;
    const n = unreadCount(app, ctx.messages, ctx.devices);
    unreadNote.textContent = voices === 0 ? t('No messages yet.') : n > 0 ? t('{count} new messages.', { count: n }) : '';
  }
  renderList();

  const canSend = ctx.inRoster && ctx.signed;
  const recorder = canSend
    ? recorderPanel({
        sendLabel: t('Send to {value}', { value: ctx.childName ?? t('the toy') }),
        onSend: async (rec, progress) => {
          // Seal for the roster in force now.
          const fresh = await loadHousehold(app, householdId, { sync: ctx.isOwner });
          if (fresh.household.status === 'blocked') {
            throw new Error(t('a parent of this household has blocked you, so your messages no longer reach the toy.'));
          }
          if (fresh.household.status === 'pending') {
            throw new Error(t('a parent of this household has not approved you yet.'));
          }
          if (!fresh.signed) throw new Error(t('This household has no keys yet.'));
          ctx = fresh;
          const view = await sendMessage(householdId, /** @type {any} */ (app.device).keys, fresh.signed.roster, { mediaType: MediaType.OGG_OPUS, durationMs: rec.durationMs }, rec.ogg, progress);
          ctx.messages.push(view);
          renderList();
        },
      })
    : notInKeys(app, ctx);

  let lastRefresh = Date.now();
  let gone = false;
  async function refresh() {
    if (gone) return;
    lastRefresh = Date.now();
    try {
      const fresh = await loadHousehold(app, householdId, { sync: false });
      if (gone) return;
      if (fresh.household.status === 'blocked') {
        // Blocked while the page was open: it says so, and nothing here works any more.
        gone = true;
        clearInterval(timer);
        view.replaceChildren(
          h('h1', { tabindex: '-1', text: hh.name }),
          h('p', { class: 'notice', role: 'status', text: BLOCKED_TEXT }),
          h('p', {}, h('a', { href: '/', 'data-link': true, text: t('Back to your households') })),
        );
        return;
      }
      if (Boolean(fresh.inRoster && fresh.signed) !== Boolean(canSend)) {
        // Added to (or taken out of) the household keys: the recorder comes (or goes).
        gone = true;
        app.navigate(location.pathname + location.search, true);
        return;
      }
      ctx = fresh;
      heading.textContent = title();
      showAvatar();
      renderList();
      refreshError.textContent = '';
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        // Deleted, or this member was removed: the server no longer shows it.
        gone = true;
        clearInterval(timer);
        view.replaceChildren(
          h('h1', { tabindex: '-1', text: hh.name }),
          h('p', { class: 'notice', role: 'status', text: t('This household is gone: an owner deleted it, or a parent removed you from it.') }),
          h('p', {}, h('a', { href: '/', 'data-link': true, text: t('Back to your households') })),
        );
        return;
      }
      refreshError.textContent = t('Could not refresh: {value}', { value: e instanceof Error ? e.message : String(e) });
    }
  }
  // Live changes refresh at once; the timer covers a page without a live stream (and
  // quiet hours ending, which no event announces).
  onHouseholdChange(app, householdId, refresh);
  const timer = setInterval(() => {
    if (!liveOpen() || Date.now() - lastRefresh >= FALLBACK_REFRESH_MS) refresh();
  }, REFRESH_MS);
  app.cleanup.push(() => {
    gone = true;
    clearInterval(timer);
  });
  app.cleanup.push(() => avatarUrl && URL.revokeObjectURL(avatarUrl));

  const view = h(
    'section',
    { class: 'household' },
    h('div', { class: 'title-row' }, avatarImg, heading),
    h('p', { class: 'muted' }, t('{name} · you are {role} · ', { name: hh.name, role: hh.role === 'owner' ? t('an owner') : hh.role === 'guardian' ? t('a guardian') : t('family') }), h('a', { href: `/households/${householdId}/family`, 'data-link': true, text: ctx.manages ? t('Family, toy and settings') : t('Family') })),
    recorder,
    h('section', { 'aria-labelledby': 'msgs-title' }, h('h2', { id: 'msgs-title', text: t('Messages') }), unreadNote, approvalStatus, list, refreshError),
  );
  return view;
}
