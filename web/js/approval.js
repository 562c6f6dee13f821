/**
 * A parent's approval of a message the toy holds (roster setting "parent approves before
 * the toy plays"): this device signs the toy protocol's approval input with its Ed25519
 * key and the server relays the signature to the toys, which check it against the roster
 * (docs/TOY-PROTOCOL.md, "Signed inputs" and "Parent approval").
 */
import { api } from './api.js';
import { bytesUuid, sameBytes, toB64url, uuidBytes } from './util.js';

const APPROVAL_DOMAIN = new TextEncoder().encode('pawpost/v1/toy-approval');

/**
 * `"pawpost/v1/toy-approval" || household_id (16) || message_id (16) || approver device_id (16)`.
 * @param {Uint8Array} householdId 16 bytes
 * @param {Uint8Array} messageId 16 bytes
 * @param {Uint8Array} approver 16 bytes: the signing device
 * @returns {Uint8Array}
 */
export function approvalInput(householdId, messageId, approver) {
  for (const [what, id] of /** @type {[string, Uint8Array][]} */ ([['household id', householdId], ['message id', messageId], ['device id', approver]])) {
    if (id.length !== 16) throw new RangeError(`${what} must be 16 bytes`);
  }
  const out = new Uint8Array(APPROVAL_DOMAIN.length + 48);
  out.set(APPROVAL_DOMAIN, 0);
  out.set(householdId, APPROVAL_DOMAIN.length);
  out.set(messageId, APPROVAL_DOMAIN.length + 16);
  out.set(approver, APPROVAL_DOMAIN.length + 32);
  return out;
}

/**
 * Signs bytes with this device's Ed25519 key (deterministic, RFC 8032).
 * @param {import('./crypto/identity.js').DeviceKeys} keys
 * @param {Uint8Array} bytes
 * @returns {Promise<Uint8Array>} 64 bytes
 */
export async function sign(keys, bytes) {
  const data = /** @type {ArrayBuffer} */ (bytes.slice().buffer);
  return new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, keys.ed25519Private, data));
}

/**
 * The approval signature of `messageId` by this device.
 * @param {import('./crypto/identity.js').DeviceKeys} keys
 * @param {string} householdId
 * @param {string} messageId
 * @returns {Promise<Uint8Array>}
 */
export function signApproval(keys, householdId, messageId) {
  return sign(keys, approvalInput(uuidBytes(householdId), uuidBytes(messageId), keys.deviceId));
}

/** @param {string} householdId */
const storageKey = (householdId) => `pawpost.approved.${householdId}`;

/**
 * Message ids this browser approved in a household. The server does not say whether a
 * message was approved, so the approving browser remembers it.
 * @param {string} householdId
 * @returns {Set<string>}
 */
export function approvedHere(householdId) {
  try {
    const list = JSON.parse(localStorage.getItem(storageKey(householdId)) ?? '[]');
    return new Set(Array.isArray(list) ? list.filter((x) => typeof x === 'string') : []);
  } catch {
    return new Set();
  }
}

/**
 * @param {string} householdId
 * @param {string} messageId
 * @param {Set<string>} [keep] ids still listed by the server, to forget deleted ones
 */
function remember(householdId, messageId, keep) {
  const ids = [...approvedHere(householdId)].filter((id) => !keep || keep.has(id));
  if (!ids.includes(messageId)) ids.push(messageId);
  localStorage.setItem(storageKey(householdId), JSON.stringify(ids.slice(-500)));
}

/**
 * Forgets what this browser approved in a household (the household is gone).
 * @param {string} householdId
 */
export function forgetApprovals(householdId) {
  localStorage.removeItem(storageKey(householdId));
}

/**
 * Approves a held message for the household's toys.
 * @param {import('./device.js').ThisDevice} device this browser
 * @param {string} householdId
 * @param {string} messageId
 * @param {Set<string>} [listed] ids of the household's messages on the server now
 */
export async function approveForToy(device, householdId, messageId, listed) {
  if (!sameBytes(device.keys.deviceId, uuidBytes(device.id))) throw new Error("This browser's keys do not match its device.");
  const signature = await signApproval(device.keys, householdId, messageId);
  await api('POST', `/api/v1/messages/${messageId}/approvals`, { device_id: device.id, signature: toB64url(signature) });
  remember(householdId, messageId, listed);
}

/**
 * Where a message stands with the toy when approvals are on: `null` when no approval is
 * involved (setting off, not sent to a toy, sent by the toy, or already played or
 * refused by it).
 * @param {{ signed: import('./crypto/roster.js').SignedRoster | null, devices: { device_id: string, kind: string }[], id: string }} ctx
 * @param {any} m a message as the server lists it
 * @returns {'waiting' | 'approved' | null}
 */
export function approvalState(ctx, m) {
  const roster = ctx.signed?.roster;
  if (!roster?.settings.parentApprovesBeforePlay) return null;
  const toyIds = new Set(ctx.devices.filter((d) => d.kind === 'toy').map((d) => d.device_id));
  for (const member of roster.members) {
    if (member.role === 'toy') toyIds.add(bytesUuid(member.deviceId));
  }
  if (toyIds.has(m.sender_device)) return null;
  const toys = m.recipients.filter((/** @type {any} */ r) => toyIds.has(r.device_id));
  if (toys.length === 0 || toys.some((/** @type {any} */ r) => r.played_at || r.refused_at)) return null;
  return approvedHere(ctx.id).has(m.message_id) ? 'approved' : 'waiting';
}

