// One paired toy on the family page, for its parents: its name, when it was last seen,
// its safety number with a "they match" step, who it says a message is from, and removal.
//
// The names (the toy's own, and one per member) are one small text record sealed on this
// device for the toy and the household's devices, exactly as a message is; the server keeps
// and relays it unread (docs/TOY-PROTOCOL.md, "Names").
import { api } from '../api.js';
import { openEnvelope, parseEnvelope, safetyNumber, sealEnvelope, verifySenderInRoster } from '../crypto/index.js';
import { removeToy, removeToyControl } from '../farewell.js';
import { approvedIdentities } from '../household-keys.js';
import { formatRelative, t } from '../i18n.js';
import { MediaType } from '../mail.js';
import { bytesUuid, formatTime, fromB64url, h, randomUuidBytes, sameBytes, toB64url, uuidBytes } from '../util.js';

/** The first line of a names record. */
const NAMES_HEADER = 'pawpost-names/1';
/** Longest name the toy says, in UTF-8 bytes (`MAX_SPOKEN_NAME_LEN` in pawpost-toy). */
export const MAX_SPOKEN_NAME_BYTES = 48;

/**
 * @typedef {{ toyName: string, members: Map<string, string> }} ToyNames
 */

/**
 * The names record as text: the header, `toy<TAB>name`, then `member<TAB>account<TAB>name`.
 * @param {ToyNames} names
 */
export function namesText(names) {
  const lines = [NAMES_HEADER];
  if (names.toyName) lines.push(`toy\t${names.toyName}`);
  for (const [account, name] of names.members) if (name) lines.push(`member\t${account}\t${name}`);
  return `${lines.join('\n')}\n`;
}

/**
 * @param {string} text
 * @returns {ToyNames | null}
 */
export function parseNamesText(text) {
  const [header, ...lines] = text.split('\n');
  if (header !== NAMES_HEADER) return null;
  /** @type {ToyNames} */
  const names = { toyName: '', members: new Map() };
  for (const line of lines) {
    const [kind, a, b] = line.split('\t');
    if (kind === 'toy' && a) names.toyName = a;
    else if (kind === 'member' && a && b) names.members.set(a, b);
  }
  return names;
}

/**
 * Why a name cannot be said by the toy, or null.
 * @param {string} name
 */
function nameProblem(name) {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return t('A name cannot hold tabs or line breaks.');
  if (new TextEncoder().encode(name).length > MAX_SPOKEN_NAME_BYTES) return t('Keep each name short: at most {count} letters.', { count: MAX_SPOKEN_NAME_BYTES });
  return null;
}

/**
 * Opens the toy's names record, when this browser was among its recipients.
 * @param {import('../app.js').App} app
 * @param {import('./context.js').HouseholdContext} ctx
 * @param {string | null | undefined} sealed unpadded base64url
 * @returns {Promise<ToyNames | null>}
 */
async function openNames(app, ctx, sealed) {
  if (!sealed || !ctx.signed || !app.device) return null;
  try {
    const bytes = fromB64url(sealed);
    const { prefix } = parseEnvelope(bytes);
    const sender = await verifySenderInRoster(prefix, ctx.signed.roster);
    const opened = await openEnvelope(bytes, app.device.keys, sender);
    return parseNamesText(new TextDecoder().decode(opened.payload));
  } catch {
    return null;
  }
}

/**
 * Seals `names` on this device for the toy and the household's devices, and hands it to
 * the server, which sends it to the toy.
 * @param {import('../app.js').App} app
 * @param {import('./context.js').HouseholdContext} ctx
 * @param {string} toyId
 * @param {ToyNames} names
 */
async function saveNames(app, ctx, toyId, names) {
  if (!ctx.signed || !app.device) throw new Error(t('This household has no keys yet.'));
  const toyBytes = uuidBytes(toyId);
  const roster = ctx.signed.roster;
  const recipients = approvedIdentities({
    ...roster,
    members: roster.members.filter((m) => m.role !== 'toy' || sameBytes(m.deviceId, toyBytes)),
  });
  const envelope = await sealEnvelope(
    app.device.keys,
    {
      messageId: randomUuidBytes(),
      householdId: uuidBytes(ctx.id),
      createdAtMs: Date.now(),
      mediaType: MediaType.TEXT,
      durationMs: 0,
      recipients,
    },
    new TextEncoder().encode(namesText(names)),
  );
  await api('PUT', `/api/v1/households/${ctx.id}/toys/${toyId}/names`, { envelope: toB64url(envelope) });
}

/**
 * The toy's card.
 * @param {import('../app.js').App} app
 * @param {import('./context.js').HouseholdContext} ctx
 * @param {any} toy as `GET /toys` lists it
 * @param {(done: string, change: () => Promise<any>) => Promise<void>} act runs a change and redraws the page
 * @returns {Promise<HTMLElement>}
 */
export async function toyCard(app, ctx, toy, act) {
  const id = toy.device_id;
  const names = await openNames(app, ctx, toy.names_envelope);
  const title = names?.toyName || t('Toy');
  const listed = ctx.signed?.roster.members.find((m) => m.role === 'toy' && m.status === 'approved' && bytesUuid(m.deviceId) === id) ?? null;
  const number = listed ? await safetyNumber(listed) : null;
  const field = (/** @type {string} */ suffix) => `toy-${id}-${suffix}`;

  let seen;
  if (toy.online) seen = t('online now');
  else if (toy.last_seen_at) seen = t('last seen {when} ({time})', { when: formatRelative(toy.last_seen_at), time: formatTime(toy.last_seen_at) });
  else seen = t('offline');

  // The safety number: what the toy says on a long press, and what this page shows for
  // the keys the household signed for it.
  const safety = h('div', { class: 'safety-number' });
  if (!number) {
    safety.append(h('p', { class: 'hint', text: t("The household keys do not list this toy yet: open this page on a parent's device that looks after them.") }));
  } else {
    const digits = h('strong', { class: 'safety-digits', text: number });
    if (toy.safety_checked_at) {
      safety.append(
        h('p', { class: 'safety-checked' }, t('Safety number {number}: checked on {time}, the toy said the same.', { number, time: formatTime(toy.safety_checked_at) })),
      );
    } else {
      const answer = h('p', { class: 'error safety-mismatch', role: 'alert' });
      const match = h('button', { type: 'button', class: 'primary', text: t('They match') });
      const differ = h('button', { type: 'button', class: 'danger', text: t("They don't match") });
      match.addEventListener('click', () => act(t('Checked: this toy holds the keys your household signed.'), () => api('POST', `/api/v1/households/${ctx.id}/toys/${id}/safety-check`)));
      differ.addEventListener('click', () => {
        answer.textContent = t("Don't use this toy for messages yet: remove it below and pair it again. If the numbers still differ, someone may have tampered with it.");
      });
      safety.append(
        h('p', {}, t('Safety number: '), digits),
        h('p', { class: 'hint', text: t("Hold the toy's paw for two seconds: it says \"my safety number is\" and six digits. Do they match the number above?") }),
        h('div', { class: 'row' }, match, differ),
        answer,
      );
    }
  }

  // Names: the toy's own, and who it says a message is from.
  const parts = [];
  if (ctx.inRoster && app.device) {
    const toyName = /** @type {HTMLInputElement} */ (h('input', { id: field('name'), value: names?.toyName ?? '', maxlength: String(MAX_SPOKEN_NAME_BYTES), autocomplete: 'off' }));
    const people = ctx.members.filter((m) => m.status === 'approved');
    const inputs = people.map((m) => /** @type {HTMLInputElement} */ (h('input', {
      id: field(`member-${m.account_id}`),
      value: names?.members.get(m.account_id) ?? '',
      maxlength: String(MAX_SPOKEN_NAME_BYTES),
      autocomplete: 'off',
      placeholder: m.display_name,
      dataset: { accountId: m.account_id },
    })));
    const problem = h('p', { class: 'error', role: 'alert' });
    const form = /** @type {HTMLFormElement} */ (h('form', { class: 'toy-names' },
      h('div', { class: 'field' }, h('label', { for: field('name'), text: t("Toy's name") }), toyName),
      h('fieldset', {},
        h('legend', { text: t('Who the toy says a message is from') }),
        h('p', { class: 'hint', text: t('Before playing a message the toy says "a message from" and the name you give here. Only your family\'s devices and the toy can read these names.') }),
        ...people.map((m, i) => h('div', { class: 'field' }, h('label', { for: inputs[i].id, text: m.display_name }), inputs[i])),
      ),
      problem,
      h('button', { type: 'submit', text: t('Save names') }),
    ));
    if (toy.names_envelope && !names) {
      parts.push(h('p', { class: 'notice', text: t('The names were saved on a device this browser cannot read. Type them again to change them here.') }));
    }
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      problem.textContent = '';
      for (const input of [toyName, ...inputs]) {
        const why = nameProblem(input.value.trim());
        if (why) {
          problem.textContent = why;
          input.focus();
          return;
        }
      }
      /** @type {ToyNames} */
      const next = { toyName: toyName.value.trim(), members: new Map() };
      for (const input of inputs) next.members.set(/** @type {string} */ (input.dataset.accountId), input.value.trim());
      act(t('The names are saved, encrypted for your family and the toy.'), () => saveNames(app, ctx, id, next));
    });
    parts.push(form);
  }

  return h(
    'li',
    { class: 'toy card', dataset: { deviceId: id } },
    h('h3', { class: 'toy-name', text: title }),
    h('p', { class: `muted toy-seen online-${toy.online ? 'yes' : 'no'}`, text: seen }),
    // What the toy said it runs when it last connected (signed updates, docs/UPDATES.md).
    toy.software ? h('p', { class: 'muted toy-software', text: t('Software version {version}', { version: toy.software.version }) }) : null,
    safety,
    h('p', { class: 'fingerprint muted' }, t('Fingerprint: '), h('code', { text: toy.fingerprint })),
    ...parts,
    // Only an owner's device the toy trusts can sign its goodbye.
    ctx.signsRoster && app.device
      ? removeToyControl(title, () => act(t('The toy is removed. It forgets this family and can be set up again.'), () => removeToy(/** @type {import('../device.js').ThisDevice} */ (app.device), ctx.id, id)))
      : null,
  );
}
