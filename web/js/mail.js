/** Messages: sealed in this browser for every approved device of the roster, and opened here. */
import { download, upload } from './api.js';
import { MediaType, openEnvelope, parseEnvelope, sealEnvelope, verifySenderInRoster } from './crypto/index.js';
import { approvedIdentities } from './household-keys.js';
import { randomUuidBytes, uuidBytes } from './util.js';

export { MediaType };

/**
 * The devices a message of `mediaType` is sealed for: every approved device of the roster,
 * toys only for voice (a toy plays voice and refuses anything else; the server refuses an
 * upload that addresses anything else to a toy).
 * @param {import('./crypto/roster.js').Roster} roster
 * @param {number} mediaType
 */
export function recipientsOf(roster, mediaType) {
  return approvedIdentities({
    ...roster,
    members: roster.members.filter((m) => m.role !== 'toy' || mediaType === MediaType.OGG_OPUS),
  });
}

/**
 * Seals `payload` for its recipients in the roster (see `recipientsOf`) and uploads it.
 * @param {string} householdId
 * @param {import('./crypto/identity.js').DeviceKeys} keys this device
 * @param {import('./crypto/roster.js').Roster} roster the checked roster in force
 * @param {{ mediaType: number, durationMs?: number }} what
 * @param {Uint8Array} payload
 * @param {(fraction: number) => void} [onProgress]
 * @returns {Promise<any>} the server's view of the stored message
 */
export async function sendMessage(householdId, keys, roster, what, payload, onProgress = () => {}) {
  const envelope = await sealEnvelope(
    keys,
    {
      messageId: randomUuidBytes(),
      householdId: uuidBytes(householdId),
      createdAtMs: Date.now(),
      mediaType: what.mediaType,
      durationMs: what.durationMs ?? 0,
      recipients: recipientsOf(roster, what.mediaType),
    },
    payload,
  );
  return upload(`/api/v1/households/${householdId}/messages`, envelope, onProgress);
}

/**
 * Downloads and opens a message: the sender must be an approved member of the roster and
 * its signature must verify before anything is decrypted.
 * @param {string} messageId
 * @param {import('./crypto/identity.js').DeviceKeys} keys
 * @param {import('./crypto/roster.js').Roster} roster
 * @returns {Promise<import('./crypto/envelope.js').OpenedMessage>}
 */
export async function openMessage(messageId, keys, roster) {
  const bytes = await download(`/api/v1/messages/${messageId}`);
  const { prefix } = parseEnvelope(bytes);
  const sender = await verifySenderInRoster(prefix, roster);
  return openEnvelope(bytes, keys, sender);
}
