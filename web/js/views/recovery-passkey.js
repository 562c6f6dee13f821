// Household recovery codes kept with the person's passkey: encrypted in this browser with
// a key from the passkey's PRF output (which never leaves the browser), stored on the
// server as ciphertext, and opened again on any device where the same (synced) passkey
// signs in. The material is `{"v":1,"codes":{"<household id>":"<recovery code>"}}`.
import { hasPrfKey, loadRecoveryMaterial, saveRecoveryMaterial } from '../passkeys.js';

const MATERIAL_VERSION = 1;

/** @returns {Promise<Record<string, string>>} */
async function codes() {
  if (!hasPrfKey()) return {};
  const bytes = await loadRecoveryMaterial();
  if (!bytes) return {};
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes));
    if (parsed?.v !== MATERIAL_VERSION || typeof parsed.codes !== 'object' || parsed.codes === null) return {};
    /** @type {Record<string, string>} */
    const out = {};
    for (const [k, v] of Object.entries(parsed.codes)) if (typeof v === 'string') out[k] = v;
    return out;
  } catch {
    return {};
  }
}

/**
 * Keeps `code` as the household's recovery code with the passkey this page signed in
 * with, if it has a PRF key. Returns whether it did.
 * @param {string} householdId
 * @param {string} code
 */
export async function rememberWithPasskey(householdId, code) {
  if (!hasPrfKey()) return false;
  const all = await codes();
  all[householdId] = code;
  await saveRecoveryMaterial(new TextEncoder().encode(JSON.stringify({ v: MATERIAL_VERSION, codes: all })));
  return true;
}

/**
 * The household's recovery code as the passkey of this page's sign-in keeps it, or null.
 * @param {string} householdId
 * @returns {Promise<string | null>}
 */
export async function savedWithPasskey(householdId) {
  try {
    return (await codes())[householdId] ?? null;
  } catch {
    return null;
  }
}
