// What a household page needs: the household, its checked roster, members, devices,
// messages, and the child's name and picture (sealed, opened here).
import { api, ApiError } from '../api.js';
import { loadRoster, maySignRoster, syncRoster } from '../household-keys.js';
import { MediaType, openMessage, recipientsOf, sendMessage } from '../mail.js';
import { PawpostCryptoError } from '../crypto/index.js';
import { sameBytes, uuidBytes } from '../util.js';
import { t } from '../i18n.js';

/** Opened payloads by message id: a message never changes. */
const opened = new Map();

/**
 * @typedef {{
 *   id: string,
 *   household: { id: string, name: string, role: string, status: string },
 *   signed: import('../crypto/roster.js').SignedRoster | null,
 *   members: { account_id: string, display_name: string, email?: string, role: string, status: string, joined_at: string }[],
 *   devices: { device_id: string, kind: string, account_id: string | null, fingerprint: string, label: string }[],
 *   messages: any[],
 *   childName: string | null,
 *   avatar: Uint8Array | null,
 *   inRoster: boolean,
 *   isOwner: boolean,
 *   manages: boolean,
 *   rosterError: string | null,
 *   waiting: import('../household-keys.js').ListedDevice[],
 *   signsRoster: boolean,
 *   recovery: import('../crypto/roster.js').Member | null,
 * }} HouseholdContext
 */

/**
 * @param {import('../app.js').App} app
 * @param {string} householdId
 * @param {import('../crypto/roster.js').SignedRoster | null} signed
 * @param {any} m
 */
async function openPayload(app, householdId, signed, m) {
  if (opened.has(m.message_id)) return opened.get(m.message_id);
  if (!signed || !app.device) return null;
  const opening = openMessage(m.message_id, app.device.keys, signed.roster).then((x) => x.payload);
  opened.set(m.message_id, opening);
  opening.catch(() => opened.delete(m.message_id));
  return opening;
}

/**
 * @param {import('../app.js').App} app
 * @param {any[]} messages
 * @param {number} mediaType
 */
function latestFor(app, messages, mediaType) {
  return messages
    .filter((m) => m.media_type === mediaType && m.recipients.some((/** @type {any} */ r) => r.device_id === app.device?.id))
    .sort((a, b) => (a.created_at < b.created_at ? 1 : -1))[0];
}

/**
 * What went wrong with the household keys, in plain words with what to do.
 * @param {unknown} e
 */
function rosterProblem(e) {
  if (e instanceof ApiError) return t('The household keys could not be loaded: {message}', { message: e.message });
  if (e instanceof PawpostCryptoError) {
    return t("The household keys the server sent do not check out, so this browser will not use them. Try again later; if it stays like this, tell the household's parent.");
  }
  return e instanceof Error ? e.message : String(e);
}

/**
 * @param {import('../app.js').App} app
 * @param {string} householdId
 * @param {{ sync?: boolean }} [options]
 * @returns {Promise<HouseholdContext>}
 */
export async function loadHousehold(app, householdId, options = {}) {
  let household;
  try {
    household = await api('GET', `/api/v1/households/${householdId}`);
  } catch (e) {
    // A pending or blocked member still sees the household in their list, with its state.
    if (!(e instanceof ApiError && e.status === 403)) throw e;
    /** @type {any[]} */
    const all = await api('GET', '/api/v1/households');
    household = all.find((x) => x.id === householdId);
    if (!household) throw e;
  }
  /** @type {HouseholdContext} */
  const ctx = {
    id: householdId,
    household,
    signed: null,
    members: [],
    devices: [],
    messages: [],
    childName: null,
    avatar: null,
    inRoster: false,
    isOwner: household.role === 'owner' && household.status === 'approved',
    manages: (household.role === 'owner' || household.role === 'guardian') && household.status === 'approved',
    rosterError: null,
    waiting: [],
    signsRoster: false,
    recovery: null,
  };
  if (household.status !== 'approved') return ctx;
  try {
    ctx.signed = await loadRoster(householdId);
    // Only a device that may sign the next version updates it: a new browser of an owner
    // is not one until a parent's device, a certificate or the recovery code adds it.
    ctx.signsRoster = Boolean(ctx.isOwner && app.device && maySignRoster(ctx.signed, app.device.keys.deviceId));
    if (ctx.signsRoster && app.device && options.sync !== false) {
      const synced = await syncRoster(householdId, app.device.keys);
      ctx.signed = synced.signed;
      ctx.waiting = synced.waiting;
    }
  } catch (e) {
    ctx.rosterError = rosterProblem(e);
  }
  ctx.recovery = ctx.signed?.roster.members.find((m) => m.role === 'recovery' && m.status === 'approved') ?? null;
  const [members, devices, messages] = await Promise.all([
    api('GET', `/api/v1/households/${householdId}/members`),
    api('GET', `/api/v1/households/${householdId}/devices`),
    api('GET', `/api/v1/households/${householdId}/messages`),
  ]);
  ctx.members = members;
  ctx.devices = devices;
  ctx.messages = messages;
  const myId = app.device ? uuidBytes(app.device.id) : null;
  ctx.inRoster = Boolean(
    myId && ctx.signed?.roster.members.some((m) => m.status === 'approved' && sameBytes(m.deviceId, myId)),
  );
  const nameMsg = latestFor(app, messages, MediaType.TEXT);
  if (nameMsg) {
    try {
      ctx.childName = new TextDecoder().decode(await openPayload(app, householdId, ctx.signed, nameMsg));
    } catch {
      ctx.childName = null;
    }
  }
  const avatarMsg = latestFor(app, messages, MediaType.IMAGE);
  if (avatarMsg) {
    try {
      ctx.avatar = await openPayload(app, householdId, ctx.signed, avatarMsg);
    } catch {
      ctx.avatar = null;
    }
  }
  if (ctx.isOwner) await reshareChildInfo(app, ctx);
  return ctx;
}

/**
 * After the roster grew, seals the child's name and picture again so that new members'
 * devices can open them (each message is sealed for the devices of its time; toys never
 * get them, see `recipientsOf`).
 * @param {import('../app.js').App} app
 * @param {HouseholdContext} ctx
 */
async function reshareChildInfo(app, ctx) {
  if (!ctx.signed || !app.device || !ctx.messages.length) return;
  for (const [type, payload] of /** @type {[number, Uint8Array | null][]} */ ([
    [MediaType.TEXT, ctx.childName === null ? null : new TextEncoder().encode(ctx.childName)],
    [MediaType.IMAGE, ctx.avatar],
  ])) {
    if (!payload) continue;
    const last = latestFor(app, ctx.messages, type);
    const covered = recipientsOf(ctx.signed.roster, type).every((m) =>
      last?.recipients.some((/** @type {any} */ r) => sameBytes(uuidBytes(r.device_id), m.deviceId)),
    );
    if (!covered) {
      const view = await sendMessage(ctx.id, app.device.keys, ctx.signed.roster, { mediaType: type }, payload);
      if (view) {
        ctx.messages.push(view);
        opened.set(view.message_id, Promise.resolve(payload));
      }
    }
  }
}

/**
 * Seals and sends the child's name or picture.
 * @param {import('../app.js').App} app
 * @param {HouseholdContext} ctx
 * @param {number} mediaType
 * @param {Uint8Array} payload
 */
export async function shareChildInfo(app, ctx, mediaType, payload) {
  if (!ctx.signed || !app.device) throw new Error(t('This household has no keys yet.'));
  const view = await sendMessage(ctx.id, app.device.keys, ctx.signed.roster, { mediaType }, payload);
  if (view) opened.set(view.message_id, Promise.resolve(payload));
  return view;
}

/**
 * Opens a voice message.
 * @param {import('../app.js').App} app
 * @param {HouseholdContext} ctx
 * @param {any} m
 * @returns {Promise<Uint8Array>}
 */
export async function openVoice(app, ctx, m) {
  const payload = await openPayload(app, ctx.id, ctx.signed, m);
  if (!payload) throw new Error(t('This browser cannot open this message.'));
  return payload;
}

/**
 * Tells the server this device delivered or played a message.
 * @param {import('../app.js').App} app
 * @param {string} messageId
 * @param {'delivered' | 'played'} state
 */
export async function receipt(app, messageId, state) {
  if (!app.device) return;
  try {
    await api('POST', `/api/v1/messages/${messageId}/receipts`, { device_id: app.device.id, state });
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
  }
}

/**
 * Whether a voice message is new to the signed-in person: someone else sent it to one of
 * their devices, none of their devices has played it, and no toy has played it yet (a
 * message the child already heard is no news to a parent). The played receipts are kept
 * by the server, so this holds after a reload and on each of the person's devices.
 * @param {import('../app.js').App} app
 * @param {any} m
 * @param {{ device_id: string, kind: string, account_id: string | null }[]} [devices] the household's devices
 */
export function isUnread(app, m, devices = []) {
  if (m.media_type !== MediaType.OGG_OPUS) return false;
  const me = app.account?.id;
  const mine = new Set(devices.filter((d) => me && d.account_id === me).map((d) => d.device_id));
  if (app.device) mine.add(app.device.id);
  if (mine.has(m.sender_device) || (me && m.sender_account === me)) return false;
  const toys = new Set(devices.filter((d) => d.kind === 'toy').map((d) => d.device_id));
  const forMe = m.recipients.filter((/** @type {any} */ r) => mine.has(r.device_id));
  if (!forMe.length || forMe.some((/** @type {any} */ r) => r.played_at)) return false;
  return !m.recipients.some((/** @type {any} */ r) => toys.has(r.device_id) && r.played_at);
}

/**
 * Voice messages new to the signed-in person (see `isUnread`).
 * @param {import('../app.js').App} app
 * @param {any[]} messages
 * @param {{ device_id: string, kind: string, account_id: string | null }[]} [devices] the household's devices
 */
export function unreadCount(app, messages, devices = []) {
  return messages.filter((m) => isUnread(app, m, devices)).length;
}

/**
 * A member's (or toy's) name for a message's sender.
 * @param {HouseholdContext} ctx
 * @param {any} m
 */
export function senderName(ctx, m) {
  const device = ctx.devices.find((d) => d.device_id === m.sender_device);
  if (device?.kind === 'toy' || (!m.sender_account && device === undefined)) {
    return ctx.childName ? t('{childName} (toy)', { childName: ctx.childName }) : t('The toy');
  }
  const member = ctx.members.find((x) => x.account_id === m.sender_account);
  return member ? member.display_name : t('A former member');
}
