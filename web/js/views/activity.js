// Activity: the account's own recent events (sign-ins, failed attempts, password and
// device changes, exports) and each household's trail, in words a family can read.
import { api } from '../api.js';
import { h } from '../util.js';
import { NOTIFICATION_WORDS } from '../notifications.js';
import { MediaType } from '../mail.js';
import { formatDateTime, t } from '../i18n.js';

const ROLE_WORD = /** @type {Record<string, string>} */ ({ owner: t('an owner (parent)'), guardian: t('a guardian (parent)'), family: t('family') });
/**
 * "23 Nov 2026 23:40", in local time and the page's language.
 * @param {string} iso
 */
export function formatWhen(iso) {
  return formatDateTime(iso);
}

/** @param {string} s */
const capital = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

/**
 * @typedef {{ seq: number, at: string, actor?: string | null, action: string, target?: string | null, client?: string | null }} AuditEntry
 * @typedef {{ text: string, alert: boolean }} Wording
 */

/**
 * Names an account: "you", a member's display name, or a short id for someone the
 * members list no longer knows.
 * @param {string | null | undefined} id
 * @param {Map<string, string>} names
 * @param {string | undefined} me
 */
function nameOf(id, names, me) {
  if (!id) return t('someone');
  if (id === me) return t('you');
  const name = names.get(id);
  return name ?? t('a former member (account {id})', { id: id.slice(0, 8) });
}

/**
 * Human wording for one event.
 * @param {AuditEntry} e
 * @param {{ names: Map<string, string>, me?: string, own: boolean, kinds?: Map<string, number> }} opts
 * @returns {Wording}
 */
export function describe(e, opts) {
  const who = nameOf(e.actor, opts.names, opts.me);
  const whom = nameOf(e.target, opts.names, opts.me);
  const from = e.client ? t(' from {client}', { client: e.client }) : '';
  /** @param {string} text */
  const ok = (text) => ({ text: capital(text), alert: false });
  /** @param {string} text */
  const bad = (text) => ({ text: capital(text), alert: true });
  switch (e.action) {
    case 'sign_in':
      return ok(opts.own ? t('Signed in{from}', { from }) : t('{who} signed in{from}', { who, from }));
    case 'sign_in_failed':
      return bad(t('Failed sign-in attempt{from}', { from }));
    case 'sign_out':
      return ok(opts.own ? t('Signed out{from}', { from }) : t('{who} signed out{from}', { who, from }));
    case 'other_sessions_ended':
      return ok(t('Signed out everywhere else{from}', { from }));
    case 'email_verified':
      return ok(t('Email address confirmed with a link sent to it{from}', { from }));
    case 'password_changed':
      return ok(t('Password changed{from}', { from }));
    case 'notifications_changed': {
      const [kind, state] = (e.target || '').split(':');
      const what = NOTIFICATION_WORDS[kind] || t('something happens');
      return ok(state === 'on' ? t('Emails when {what} switched on{from}', { what, from }) : t('Emails when {what} switched off{from}', { what, from }));
    }
    case 'passkey_added':
      return ok(t('Passkey added to sign in with{from}', { from }));
    case 'passkey_removed':
      return ok(t('Passkey removed{from}', { from }));
    case 'password_reset':
      return ok(t('New password set with a link sent by email{from}; every browser was signed out', { from }));
    case 'password_reset_requested':
      return ok(t('A link to choose a new password was asked for{from}', { from }));
    case 'device_linked':
      return ok(opts.own ? t('A device of your account vouched for a new one{from}', { from }) : t('A device of the account vouched for a new one{from}', { from }));
    case 'device_removed':
      return ok(opts.own ? t('A device was removed from your account{from}', { from }) : t('A device was removed from the account{from}', { from }));
    case 'device_registered':
      return ok(opts.own ? t('New device added to your account{from}', { from }) : t('New device added to the account{from}', { from }));
    case 'data_exported':
      return ok(opts.own ? t('Your data was exported{from}', { from }) : t("The account's data was exported{from}", { from }));
    case 'account_created':
      return ok(t('Account created{from}', { from }));
    case 'account_deleted':
      return bad(t('Account deleted{from}', { from }));
    case 'household_created':
      return ok(t('{who} created the household{from}', { who, from }));
    case 'household_renamed':
      return ok(t('{who} renamed the household{from}', { who, from }));
    case 'invitation_created': {
      const role = e.target ? ROLE_WORD[e.target] : undefined;
      return ok(role ? t('{who} created an invitation link for {role}{from}', { who, role, from }) : t('{who} created an invitation link{from}', { who, from }));
    }
    case 'invitation_accepted':
      return ok(t('{who} joined with an invitation link{from}', { who, from }));
    case 'member_approved':
      return ok(t('{who} approved {whom}{from}', { who, whom, from }));
    case 'member_blocked':
      return bad(t('{who} blocked {whom}{from}', { who, whom, from }));
    case 'member_unblocked':
      return ok(t('{who} unblocked {whom}{from}', { who, whom, from }));
    case 'member_pending':
      return ok(t('{who} put {whom} back to waiting for approval{from}', { who, whom, from }));
    case 'member_role_changed': {
      const [id, role] = (e.target ?? '').split(':');
      const subject = nameOf(id, opts.names, opts.me);
      return ok(t('{who} made {subject} {role}{from}', { who, subject, role: ROLE_WORD[role] ?? role ?? t('another role'), from }));
    }
    case 'member_removed':
      return e.actor && e.actor === e.target
        ? ok(t('{who} left the household{from}', { who, from }))
        : bad(t('{who} removed {whom}{from}', { who, whom, from }));
    case 'roster_published':
      return ok(e.target ? t("{who} updated the household's list of keys (version {version}){from}", { who, version: e.target, from }) : t("{who} updated the household's list of keys{from}", { who, from }));
    case 'message_uploaded': {
      // The child's name and picture travel as sealed text and image messages.
      const kind = opts.kinds?.get(e.target ?? '');
      if (e.actor && kind === MediaType.TEXT) return ok(t("{who} saved the child's name, sealed for the family{from}", { who, from }));
      if (e.actor && kind === MediaType.IMAGE) return ok(t("{who} saved the child's picture, sealed for the family{from}", { who, from }));
      return ok(e.actor ? t('{who} sent a message{from}', { who, from }) : t('The toy sent an answer{from}', { from }));
    }
    case 'message_downloaded':
      return ok(t('{who} fetched a message{from}', { who, from }));
    case 'message_approved':
      return ok(t('{who} approved a message for the toy{from}', { who, from }));
    case 'toy_paired':
      return ok(t('{who} paired a toy{from}', { who, from }));
    case 'toy_connected':
      return ok(t('The toy connected{from}', { from }));
    case 'toy_auth_failed':
      return bad(t('A toy failed to prove who it is{from}', { from }));
    case 'toy_key_rotated':
      return ok(t('The toy renewed its key{from}', { from }));
    case 'toy_pairing_requested':
      return ok(t('A toy asked to be paired{from}', { from }));
    case 'toy_removed':
      return bad(t('{who} removed a toy from the household; it forgets the family{from}', { who, from }));
    case 'toy_names_changed':
      return ok(t("{who} changed the toy's names (sealed on their device){from}", { who, from }));
    case 'toy_safety_number_checked':
      return ok(t("{who} checked the toy's safety number: it matched{from}", { who, from }));
    case 'household_deleted':
      return bad(t('{who} deleted the household{from}', { who, from }));
    case 'toy_pairing_claimed':
      return ok(t("{who} entered a toy's pairing code; the toy waits for a press of its paw{from}", { who, from }));
    case 'toy_pairing_contested':
      return bad(t('{who} entered a pairing code that someone else entered too, so it no longer works{from}', { who, from }));
    case 'toy_auth_failures_throttled':
      return bad(t('Toys failed to prove who they are too many times{value}{from}', { value: e.target ? ` (${e.target})` : '', from }));
    case 'account_locked':
      return bad(opts.own ? t("The server's operator locked your account") : t("The server's operator locked the account"));
    case 'account_unlocked':
      return ok(opts.own ? t("The server's operator unlocked your account") : t("The server's operator unlocked the account"));
    case 'release_published':
      return ok(t("The server's operator published new software for toys ({what})", { what: e.target ?? '' }));
    case 'breach_notice_sent':
      return bad(opts.own ? t('A notice of a data breach was sent to you; read it and change your password') : t('A notice of a data breach was sent to the account; read it and change your password'));
    default: {
      const what = e.action.replace(/_/g, ' ');
      return ok(`${e.actor && !opts.own ? `${who}: ` : ''}${what}${from}`);
    }
  }
}

/**
 * @param {AuditEntry[]} entries
 * @param {{ names: Map<string, string>, me?: string, own: boolean, kinds?: Map<string, number> }} opts
 * @param {string} label
 */
function activityList(entries, opts, label) {
  if (entries.length === 0) return h('p', { class: 'muted', text: t('Nothing recorded yet.') });
  return h(
    'ul',
    { class: 'activity', 'aria-label': label },
    ...entries.map((e) => {
      const { text, alert } = describe(e, opts);
      return h(
        'li',
        { class: alert ? 'activity-item alert' : 'activity-item', dataset: { action: e.action, seq: String(e.seq) } },
        h('span', { class: 'what', text }),
        ' — ',
        h('time', { datetime: e.at, text: formatWhen(e.at) }),
      );
    }),
  );
}

/**
 * "Recent activity" of the signed-in account.
 * @param {import('../app.js').App} app
 * @param {Map<string, string>} names members of the person's households, by account id
 * @param {Map<string, number>} kinds the media type of each message in those households, by id
 */
async function accountActivitySection(app, names, kinds) {
  const section = h('section', { 'aria-labelledby': 'activity-title', class: 'recent-activity' }, h('h2', { id: 'activity-title', text: t('Recent activity') }));
  section.append(h('p', { class: 'hint', text: t('Sign-ins to your account and what you did, newest first. If you see a sign-in you do not recognise, change your password.') }));
  try {
    /** @type {AuditEntry[]} */
    const entries = await api('GET', '/api/v1/accounts/me/activity');
    section.append(activityList(entries, { names, me: app.account?.id, own: true, kinds }, t('Your recent activity')));
  } catch (e) {
    section.append(h('p', { class: 'error', text: t('Your activity could not be loaded: {message}', { message: e instanceof Error ? e.message : String(e) }) }));
  }
  return section;
}

/**
 * "Recent activity" of the account and "Household activity" for each household the
 * person is an approved member of, with members' names in place of account ids.
 * @param {import('../app.js').App} app
 * @param {{ id: string, name: string, status: string }[]} households
 * @returns {Promise<[HTMLElement, HTMLElement]>}
 */
export async function activitySections(app, households) {
  const approved = households.filter((x) => x.status === 'approved');
  /** @type {Map<string, number>} */
  const kinds = new Map();
  const loaded = await Promise.all(
    approved.map(async (hh) => {
      const [entries, members, messages] = await Promise.all([
        api('GET', `/api/v1/households/${hh.id}/audit`).catch((/** @type {unknown} */ e) => (e instanceof Error ? e : new Error(String(e)))),
        api('GET', `/api/v1/households/${hh.id}/members`).catch(() => []),
        api('GET', `/api/v1/households/${hh.id}/messages`).catch(() => []),
      ]);
      for (const m of messages) kinds.set(m.message_id, m.media_type);
      /** @type {Map<string, string>} */
      const names = new Map(members.map((/** @type {any} */ m) => [m.account_id, m.display_name]));
      return { hh, entries: /** @type {AuditEntry[] | Error} */ (entries), names };
    }),
  );
  /** @type {Map<string, string>} */
  const everyone = new Map();
  for (const x of loaded) for (const [id, name] of x.names) everyone.set(id, name);

  const section = h('section', { 'aria-labelledby': 'household-activity-title', class: 'household-activity' }, h('h2', { id: 'household-activity-title', text: t('Household activity') }));
  if (approved.length === 0) {
    section.append(h('p', { class: 'muted', text: t('You are not an approved member of any household yet.') }));
  } else {
    section.append(h('p', { class: 'hint', text: t('What happened in each of your households, newest first: who joined, was approved or blocked, toys, and messages.') }));
  }
  for (const { hh, entries, names } of loaded) {
    section.append(h('h3', { text: hh.name }));
    section.append(
      entries instanceof Error
        ? h('p', { class: 'error', text: t('The activity of {name} could not be loaded: {message}', { name: hh.name, message: entries.message }) })
        : activityList(entries, { names, me: app.account?.id, own: false, kinds }, t('Activity in {name}', { name: hh.name })),
    );
  }
  return [await accountActivitySection(app, everyone, kinds), section];
}
