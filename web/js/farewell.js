/**
 * A toy's goodbye: this owner's device signs the toy protocol's leave input, so that a toy
 * removed from the household (or whose household is deleted) forgets it and can be set up
 * again. The server checks the signature and relays it to the toy, now or when it next
 * connects; the toy checks it against its roster and the owner keys it trusts
 * (docs/TOY-PROTOCOL.md, "Signed inputs" and "Leaving a household").
 */
import { api } from './api.js';
import { sign } from './approval.js';
import { loadRoster, maySignRoster } from './household-keys.js';
import { h, sameBytes, toB64url, uuidBytes } from './util.js';
import { t } from './i18n.js';

const LEAVE_DOMAIN = new TextEncoder().encode('pawpost/v1/toy-leave');

/** What a parent reads before removing a toy. */
export const TOY_REMOVAL_WARNING = t('The toy will forget this family and can be set up again. Messages on it are deleted.');

/**
 * `"pawpost/v1/toy-leave" || household_id (16) || toy device_id (16) || signer device_id (16)`.
 * @param {Uint8Array} householdId 16 bytes
 * @param {Uint8Array} toyId 16 bytes: the toy that leaves
 * @param {Uint8Array} signer 16 bytes: the signing owner device
 * @returns {Uint8Array}
 */
export function leaveInput(householdId, toyId, signer) {
  for (const [what, id] of /** @type {[string, Uint8Array][]} */ ([['household id', householdId], ['toy id', toyId], ['device id', signer]])) {
    if (id.length !== 16) throw new RangeError(`${what} must be 16 bytes`);
  }
  const out = new Uint8Array(LEAVE_DOMAIN.length + 48);
  out.set(LEAVE_DOMAIN, 0);
  out.set(householdId, LEAVE_DOMAIN.length);
  out.set(toyId, LEAVE_DOMAIN.length + 16);
  out.set(signer, LEAVE_DOMAIN.length + 32);
  return out;
}

/**
 * This device's signature that the toy `toyId` leaves the household.
 * @param {import('./crypto/identity.js').DeviceKeys} keys
 * @param {string} householdId
 * @param {string} toyId
 * @returns {Promise<Uint8Array>} 64 bytes
 */
export function signLeave(keys, householdId, toyId) {
  return sign(keys, leaveInput(uuidBytes(householdId), uuidBytes(toyId), keys.deviceId));
}

/**
 * The toy's goodbye signed by this browser, as the server takes it.
 * @param {import('./device.js').ThisDevice} device this browser
 * @param {string} householdId
 * @param {string} toyId
 * @returns {Promise<{ toy_device_id: string, signer_device_id: string, signature: string }>}
 */
export async function goodbye(device, householdId, toyId) {
  if (!sameBytes(device.keys.deviceId, uuidBytes(device.id))) throw new Error(t("This browser's keys do not match its device."));
  const signature = await signLeave(device.keys, householdId, toyId);
  return { toy_device_id: toyId, signer_device_id: device.id, signature: toB64url(signature) };
}

/**
 * Removes a toy from the household with this owner device's signed goodbye.
 * @param {import('./device.js').ThisDevice} device this browser
 * @param {string} householdId
 * @param {string} toyId
 */
export async function removeToy(device, householdId, toyId) {
  const { signer_device_id: signerDeviceId, signature } = await goodbye(device, householdId, toyId);
  await api('DELETE', `/api/v1/households/${householdId}/toys/${toyId}`, { signer_device_id: signerDeviceId, signature });
}

/**
 * A goodbye for each of the household's toys, for deleting the household: none when this
 * browser is not an owner device of the household keys (the toys then stay unpaired on
 * the server only, and need their paw held for 10 seconds before they can be set up again).
 * @param {import('./device.js').ThisDevice | null | undefined} device this browser
 * @param {string} householdId
 */
export async function goodbyes(device, householdId) {
  if (!device) return [];
  /** @type {{ device_id: string }[]} */
  const toys = await api('GET', `/api/v1/households/${householdId}/toys`);
  if (toys.length === 0) return [];
  const current = await loadRoster(householdId);
  if (!current || !maySignRoster(current, device.keys.deviceId)) return [];
  return Promise.all(toys.map((t) => goodbye(device, householdId, t.device_id)));
}

/**
 * "Remove this toy…", which asks first in plain words.
 * @param {string} label the toy's name
 * @param {() => void} remove called when the parent confirms
 * @returns {HTMLElement}
 */
export function removeToyControl(label, remove) {
  const open = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'danger', text: t('Remove {label}…', { label }), 'aria-expanded': 'false' }));
  const yes = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'danger', text: t('Remove the toy') }));
  const no = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', text: t('Keep it') }));
  const panel = h('div', { class: 'card confirm', role: 'group', 'aria-label': t('Remove {label}', { label }), hidden: true }, h('p', { text: TOY_REMOVAL_WARNING }), h('div', { class: 'row' }, yes, no));
  open.addEventListener('click', () => {
    panel.hidden = false;
    open.hidden = true;
    open.setAttribute('aria-expanded', 'true');
    yes.focus();
  });
  no.addEventListener('click', () => {
    panel.hidden = true;
    open.hidden = false;
    open.setAttribute('aria-expanded', 'false');
    open.focus();
  });
  yes.addEventListener('click', () => {
    yes.disabled = true;
    remove();
  });
  return h('div', { class: 'remove-toy' }, open, panel);
}
