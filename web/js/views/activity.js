// Activity: the account's own recent events (sign-ins, failed attempts, password and
// device changes, exports) and each household's trail, in words a family can read.
import { api } from '../api.js';
import { h } from '../util.js';
import { NOTIFICATION_WORDS } from '../notifications.js';

const ROLE_WORD = /** @type {Record<string, string>} */ ({ owner: 'an owner (parent)', guardian: 'a guardian (parent)', family: 'family' });
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * "23 Nov 2026 23:40", in local time.
 * @param {string} iso
 */
export function formatWhen(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
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
  if (!id) return 'someone';
  if (id === me) return 'you';
  const name = names.get(id);
  return name ?? `a former member (account ${id.slice(0, 8)})`;
}

/**
 * Human wording for one event.
 * @param {AuditEntry} e
 * @param {{ names: Map<string, string>, me?: string, own: boolean }} opts
 * @returns {Wording}
 */
export function describe(e, opts) {
  const who = nameOf(e.actor, opts.names, opts.me);
  const whom = nameOf(e.target, opts.names, opts.me);
  const from = e.client ? ` from ${e.client}` : '';
  /** @param {string} text */
  const ok = (text) => ({ text: capital(text), alert: false });
  /** @param {string} text */
  const bad = (text) => ({ text: capital(text), alert: true });
  switch (e.action) {
    case 'sign_in':
      return ok(opts.own ? `Signed in${from}` : `${who} signed in${from}`);
    case 'sign_in_failed':
      return bad(`Failed sign-in attempt${from}`);
    case 'sign_out':
      return ok(opts.own ? `Signed out${from}` : `${who} signed out${from}`);
    case 'email_verified':
      return ok(`Email address confirmed with a link sent to it${from}`);
    case 'password_changed':
      return ok(`Password changed${from}`);
    case 'notifications_changed': {
      const [kind, state] = (e.target || '').split(':');
      const what = NOTIFICATION_WORDS[kind] || 'something happens';
      return ok(`Emails when ${what} switched ${state === 'on' ? 'on' : 'off'}${from}`);
    }
    case 'passkey_added':
      return ok(`Passkey added to sign in with${from}`);
    case 'passkey_removed':
      return ok(`Passkey removed${from}`);
    case 'password_reset':
      return ok(`New password set with a link sent by email${from}; every browser was signed out`);
    case 'password_reset_requested':
      return ok(`A link to choose a new password was asked for${from}`);
    case 'device_linked':
      return ok(`A device of ${opts.own ? 'your' : 'the'} account vouched for a new one${from}`);
    case 'device_removed':
      return ok(`A device was removed from ${opts.own ? 'your' : 'the'} account${from}`);
    case 'device_registered':
      return ok(`New device added to ${opts.own ? 'your' : 'the'} account${from}`);
    case 'data_exported':
      return ok(`${opts.own ? 'Your' : 'The account\'s'} data was exported${from}`);
    case 'account_created':
      return ok(`Account created${from}`);
    case 'account_deleted':
      return bad(`Account deleted${from}`);
    case 'household_created':
      return ok(`${who} created the household${from}`);
    case 'household_renamed':
      return ok(`${who} renamed the household${from}`);
    case 'invitation_created': {
      const role = e.target ? ROLE_WORD[e.target] : undefined;
      return ok(`${who} created an invitation link${role ? ` for ${role}` : ''}${from}`);
    }
    case 'invitation_accepted':
      return ok(`${who} joined with an invitation link${from}`);
    case 'member_approved':
      return ok(`${who} approved ${whom}${from}`);
    case 'member_blocked':
      return bad(`${who} blocked ${whom}${from}`);
    case 'member_unblocked':
      return ok(`${who} unblocked ${whom}${from}`);
    case 'member_pending':
      return ok(`${who} put ${whom} back to waiting for approval${from}`);
    case 'member_role_changed': {
      const [id, role] = (e.target ?? '').split(':');
      const subject = nameOf(id, opts.names, opts.me);
      return ok(`${who} made ${subject} ${ROLE_WORD[role] ?? role ?? 'another role'}${from}`);
    }
    case 'member_removed':
      return e.actor && e.actor === e.target
        ? ok(`${who} left the household${from}`)
        : bad(`${who} removed ${whom}${from}`);
    case 'roster_published':
      return ok(`${who} updated the household's list of keys${e.target ? ` (version ${e.target})` : ''}${from}`);
    case 'message_uploaded':
      return ok(e.actor ? `${who} sent a message${from}` : `The toy sent an answer${from}`);
    case 'message_downloaded':
      return ok(`${who} fetched a message${from}`);
    case 'message_approved':
      return ok(`${who} approved a message for the toy${from}`);
    case 'toy_paired':
      return ok(`${who} paired a toy${from}`);
    case 'toy_connected':
      return ok(`The toy connected${from}`);
    case 'toy_auth_failed':
      return bad(`A toy failed to prove who it is${from}`);
    case 'toy_key_rotated':
      return ok(`The toy renewed its key${from}`);
    case 'toy_pairing_requested':
      return ok(`A toy asked to be paired${from}`);
    case 'toy_removed':
      return bad(`${who} removed a toy from the household; it forgets the family${from}`);
    case 'household_deleted':
      return bad(`${who} deleted the household${from}`);
    case 'toy_pairing_claimed':
      return ok(`${who} entered a toy's pairing code; the toy waits for a press of its paw${from}`);
    case 'toy_pairing_contested':
      return bad(`${who} entered a pairing code that someone else entered too, so it no longer works${from}`);
    case 'toy_auth_failures_throttled':
      return bad(`Toys failed to prove who they are too many times${e.target ? ` (${e.target})` : ''}${from}`);
    case 'account_locked':
      return bad(`The server's operator locked ${opts.own ? 'your' : 'the'} account`);
    case 'account_unlocked':
      return ok(`The server's operator unlocked ${opts.own ? 'your' : 'the'} account`);
    case 'breach_notice_sent':
      return bad(`A notice of a data breach was sent to ${opts.own ? 'you' : 'the account'}; read it and change your password`);
    default: {
      const what = e.action.replace(/_/g, ' ');
      return ok(`${e.actor && !opts.own ? `${who}: ` : ''}${what}${from}`);
    }
  }
}

/**
 * @param {AuditEntry[]} entries
 * @param {{ names: Map<string, string>, me?: string, own: boolean }} opts
 * @param {string} label
 */
function activityList(entries, opts, label) {
  if (entries.length === 0) return h('p', { class: 'muted', text: 'Nothing recorded yet.' });
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
 */
async function accountActivitySection(app, names) {
  const section = h('section', { 'aria-labelledby': 'activity-title', class: 'recent-activity' }, h('h2', { id: 'activity-title', text: 'Recent activity' }));
  section.append(h('p', { class: 'hint', text: 'Sign-ins to your account and what you did, newest first. If you see a sign-in you do not recognise, change your password.' }));
  try {
    /** @type {AuditEntry[]} */
    const entries = await api('GET', '/api/v1/accounts/me/activity');
    section.append(activityList(entries, { names, me: app.account?.id, own: true }, 'Your recent activity'));
  } catch (e) {
    section.append(h('p', { class: 'error', text: `Your activity could not be loaded: ${e instanceof Error ? e.message : e}` }));
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
  const loaded = await Promise.all(
    approved.map(async (hh) => {
      const [entries, members] = await Promise.all([
        api('GET', `/api/v1/households/${hh.id}/audit`).catch((/** @type {unknown} */ e) => (e instanceof Error ? e : new Error(String(e)))),
        api('GET', `/api/v1/households/${hh.id}/members`).catch(() => []),
      ]);
      /** @type {Map<string, string>} */
      const names = new Map(members.map((/** @type {any} */ m) => [m.account_id, m.display_name]));
      return { hh, entries: /** @type {AuditEntry[] | Error} */ (entries), names };
    }),
  );
  /** @type {Map<string, string>} */
  const everyone = new Map();
  for (const x of loaded) for (const [id, name] of x.names) everyone.set(id, name);

  const section = h('section', { 'aria-labelledby': 'household-activity-title', class: 'household-activity' }, h('h2', { id: 'household-activity-title', text: 'Household activity' }));
  if (approved.length === 0) {
    section.append(h('p', { class: 'muted', text: 'You are not an approved member of any household yet.' }));
  } else {
    section.append(h('p', { class: 'hint', text: 'What happened in each of your households, newest first: who joined, was approved or blocked, toys, and messages.' }));
  }
  for (const { hh, entries, names } of loaded) {
    section.append(h('h3', { text: hh.name }));
    section.append(
      entries instanceof Error
        ? h('p', { class: 'error', text: `The activity of ${hh.name} could not be loaded: ${entries.message}` })
        : activityList(entries, { names, me: app.account?.id, own: false }, `Activity in ${hh.name}`),
    );
  }
  return [await accountActivitySection(app, everyone), section];
}
