/**
 * The household recovery key: a code the owner writes down, from which an Ed25519 key is
 * derived that may sign the household's roster when every owner device is lost
 * (docs/ENVELOPE.md, "Recovery key").
 */
import { concat, expectLength, utf8 } from './bytes.js';
import { fail } from './errors.js';
import { ID_LEN } from './identity.js';
import { draw, importEd25519Seed, sha256, systemRng } from './primitives.js';

/** Random bytes in a recovery code. */
export const RECOVERY_CODE_LEN = 20;
/** Characters in a recovery code, without its separators (5 bits each). */
export const RECOVERY_CODE_CHARS = 32;
/** Characters in each group of a shown recovery code. */
export const RECOVERY_CODE_GROUP = 4;

/** Crockford's base32 alphabet: no I, L, O or U. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const SEED_DOMAIN = utf8('pawpost/v1/recovery-seed');
const ID_DOMAIN = utf8('pawpost/v1/recovery-id');

/**
 * What signs a roster: a device id and an Ed25519 signing key. Device keys are one; the key
 * derived from a recovery code is another.
 * @typedef {{ deviceId: Uint8Array, ed25519Private: CryptoKey }} SigningKeys
 */

/**
 * The recovery key as the roster sees it, with the key to sign with.
 * @typedef {{ deviceId: Uint8Array, ed25519Pub: Uint8Array, keys: SigningKeys }} RecoverySigner
 */

/**
 * Shows 20 bytes as 32 Crockford base32 characters (most significant bits first), in 8
 * groups of 4 joined by `-`.
 * @param {Uint8Array} codeBytes 20 bytes
 * @returns {string} for example `7ZQ4-0M2K-...` (39 characters)
 */
export function formatRecoveryCode(codeBytes) {
  expectLength(codeBytes, RECOVERY_CODE_LEN, 'recovery code');
  let chars = '';
  let acc = 0;
  let bits = 0;
  for (const b of codeBytes) {
    acc = ((acc << 8) | b) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      chars += ALPHABET[(acc >> bits) & 31];
    }
  }
  const groups = [];
  for (let i = 0; i < chars.length; i += RECOVERY_CODE_GROUP) {
    groups.push(chars.slice(i, i + RECOVERY_CODE_GROUP));
  }
  return groups.join('-');
}

/**
 * A fresh recovery code to show once: 20 random bytes, formatted.
 * @param {import('./primitives.js').Rng} [rng] tests only; the platform's CSPRNG otherwise
 * @returns {string}
 */
export function generateRecoveryCode(rng) {
  return formatRecoveryCode(draw(rng ?? systemRng, RECOVERY_CODE_LEN));
}

/**
 * Reads a recovery code as a person typed it: case does not matter, spaces and hyphens are
 * ignored, O reads as 0 and I or L as 1. Anything else, or not exactly 32 characters, fails
 * with `invalid_recovery_code`.
 * @param {string} text
 * @returns {Uint8Array} the 20 code bytes
 */
export function parseRecoveryCode(text) {
  const cleaned = String(text)
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1');
  if (cleaned.length !== RECOVERY_CODE_CHARS) {
    fail('invalid_recovery_code', 'a recovery code has 32 letters and digits');
  }
  const out = new Uint8Array(RECOVERY_CODE_LEN);
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (const c of cleaned) {
    const v = ALPHABET.indexOf(c);
    if (v < 0) fail('invalid_recovery_code', 'a recovery code has only letters and digits');
    acc = ((acc << 5) | v) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/**
 * The Ed25519 seed of a recovery code: `SHA-256("pawpost/v1/recovery-seed" || code bytes)`.
 * @param {Uint8Array} codeBytes 20 bytes
 * @returns {Promise<Uint8Array>}
 */
export function recoverySeed(codeBytes) {
  return sha256(concat(SEED_DOMAIN, expectLength(codeBytes, RECOVERY_CODE_LEN, 'recovery code')));
}

/**
 * The roster device id of a recovery key: `SHA-256("pawpost/v1/recovery-id" || ed25519_pub)`,
 * first 16 bytes.
 * @param {Uint8Array} ed25519Pub
 * @returns {Promise<Uint8Array>}
 */
export async function recoveryDeviceId(ed25519Pub) {
  const d = await sha256(concat(ID_DOMAIN, expectLength(ed25519Pub, 32, 'ed25519Pub')));
  return d.slice(0, ID_LEN);
}

/**
 * The recovery key of a code, ready to sign a roster with `signRoster(roster, signer.keys)`.
 * The private key is not extractable.
 * @param {Uint8Array} codeBytes 20 bytes, from {@link parseRecoveryCode}
 * @returns {Promise<RecoverySigner>}
 */
export async function recoverySigner(codeBytes) {
  const seed = await recoverySeed(codeBytes);
  const { privateKey, publicKey } = await importEd25519Seed(seed, false);
  seed.fill(0);
  const deviceId = await recoveryDeviceId(publicKey);
  return { deviceId, ed25519Pub: publicKey, keys: { deviceId, ed25519Private: privateKey } };
}

/**
 * The roster member of a recovery key: role `recovery`, approved, the account of the owner
 * who made it, and an X25519 key of 32 zeros (nothing can be encrypted to it).
 * @param {{ deviceId: Uint8Array, ed25519Pub: Uint8Array }} signer
 * @param {Uint8Array} accountId 16 bytes
 * @returns {import('./roster.js').Member}
 */
export function recoveryMember(signer, accountId) {
  return {
    deviceId: expectLength(signer.deviceId, ID_LEN, 'deviceId').slice(),
    accountId: expectLength(accountId, ID_LEN, 'accountId').slice(),
    role: 'recovery',
    status: 'approved',
    x25519Pub: new Uint8Array(32),
    ed25519Pub: expectLength(signer.ed25519Pub, 32, 'ed25519Pub').slice(),
  };
}
