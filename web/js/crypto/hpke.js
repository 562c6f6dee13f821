/**
 * HPKE (RFC 9180) mode_base for one suite only: DHKEM(X25519, HKDF-SHA256) (0x0020),
 * HKDF-SHA256 (0x0001), AES-256-GCM (0x0002). Built on WebCrypto: HMAC-SHA256 for the
 * separate Extract and Expand steps (WebCrypto's HKDF only does both at once), X25519
 * through `deriveBits`, AES-GCM for the AEAD.
 */
import { concat, utf8 } from './bytes.js';
import {
  aesGcmOpen,
  aesGcmSeal,
  hmacSha256,
  importAesGcmKey,
  importX25519Secret,
  x25519,
  x25519PublicOf,
} from './primitives.js';

const MODE_BASE = 0;
const KEM_ID = 0x0020;
const KDF_ID = 0x0001;
const AEAD_ID = 0x0002;
const N_SECRET = 32;
const N_PK = 32;
const N_SK = 32;
const N_K = 32;
const N_N = 12;
const N_H = 32;

const HPKE_V1 = utf8('HPKE-v1');
const KEM_SUITE_ID = concat(utf8('KEM'), i2osp(KEM_ID, 2));
const HPKE_SUITE_ID = concat(utf8('HPKE'), i2osp(KEM_ID, 2), i2osp(KDF_ID, 2), i2osp(AEAD_ID, 2));
// RFC 5869: an absent salt is HashLen zeros. WebCrypto refuses an empty HMAC key, and HMAC
// pads both to the same block, so this is exactly Extract with salt "".
const ZERO_SALT = new Uint8Array(N_H);
const EMPTY = new Uint8Array(0);

/**
 * Big-endian unsigned integer of `length` bytes (RFC 9180's I2OSP).
 * @param {number} value
 * @param {number} length
 * @returns {Uint8Array}
 */
function i2osp(value, length) {
  const out = new Uint8Array(length);
  let v = value;
  for (let i = length - 1; i >= 0 && v > 0; i--) {
    out[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return out;
}

/**
 * HKDF-Extract with HMAC-SHA256.
 * @param {Uint8Array} salt
 * @param {Uint8Array} ikm
 * @returns {Promise<Uint8Array>}
 */
function extract(salt, ikm) {
  return hmacSha256(salt.length === 0 ? ZERO_SALT : salt, ikm);
}

/**
 * HKDF-Expand with HMAC-SHA256.
 * @param {Uint8Array} prk
 * @param {Uint8Array} info
 * @param {number} length at most 255 * 32
 * @returns {Promise<Uint8Array>}
 */
async function expand(prk, info, length) {
  const out = new Uint8Array(length);
  /** @type {Uint8Array} */
  let previous = EMPTY;
  for (let i = 1, filled = 0; filled < length; i++) {
    previous = await hmacSha256(prk, concat(previous, info, Uint8Array.of(i)));
    out.set(previous.subarray(0, length - filled), filled);
    filled += previous.length;
  }
  return out;
}

/**
 * LabeledExtract(salt, label, ikm) for a suite id (the KEM's or the whole suite's).
 * @param {Uint8Array} suiteId
 * @param {Uint8Array} salt
 * @param {string} label
 * @param {Uint8Array} ikm
 * @returns {Promise<Uint8Array>}
 */
export function labeledExtract(suiteId, salt, label, ikm) {
  return extract(salt, concat(HPKE_V1, suiteId, utf8(label), ikm));
}

/**
 * LabeledExpand(prk, label, info, L) for a suite id.
 * @param {Uint8Array} suiteId
 * @param {Uint8Array} prk
 * @param {string} label
 * @param {Uint8Array} info
 * @param {number} length
 * @returns {Promise<Uint8Array>}
 */
export function labeledExpand(suiteId, prk, label, info, length) {
  const labeledInfo = concat(i2osp(length, 2), HPKE_V1, suiteId, utf8(label), info);
  return expand(prk, labeledInfo, length);
}

/** Suite ids, for callers that check intermediate values against the RFC vectors. */
export const SUITE_IDS = Object.freeze({ kem: KEM_SUITE_ID, hpke: HPKE_SUITE_ID });

/**
 * An X25519 key pair as HPKE uses it: the private key stays a CryptoKey.
 * @typedef {{ privateKey: CryptoKey, publicKey: Uint8Array }} KemKeyPair
 */

/**
 * DeriveKeyPair(ikm) for DHKEM(X25519): the private key is 32 bytes of labeled expand, used
 * as the X25519 scalar as is (X25519 clamps it).
 * @param {Uint8Array} ikm at least 32 bytes
 * @returns {Promise<KemKeyPair & { privateKeyBytes: Uint8Array }>}
 */
export async function deriveKeyPair(ikm) {
  const dkpPrk = await labeledExtract(KEM_SUITE_ID, EMPTY, 'dkp_prk', ikm);
  const privateKeyBytes = await labeledExpand(KEM_SUITE_ID, dkpPrk, 'sk', EMPTY, N_SK);
  const privateKey = await importX25519Secret(privateKeyBytes, false);
  return { privateKey, publicKey: await x25519PublicOf(privateKey), privateKeyBytes };
}

/**
 * ExtractAndExpand(dh, kem_context) -> shared_secret.
 * @param {Uint8Array} dh
 * @param {Uint8Array} kemContext enc || pkR
 * @returns {Promise<Uint8Array>}
 */
async function extractAndExpand(dh, kemContext) {
  const eaePrk = await labeledExtract(KEM_SUITE_ID, EMPTY, 'eae_prk', dh);
  return labeledExpand(KEM_SUITE_ID, eaePrk, 'shared_secret', kemContext, N_SECRET);
}

/**
 * The values the key schedule derives, exposed so that tests can compare each one with the
 * RFC vectors.
 * @typedef {{
 *   sharedSecret: Uint8Array,
 *   keyScheduleContext: Uint8Array,
 *   secret: Uint8Array,
 *   key: Uint8Array,
 *   baseNonce: Uint8Array,
 *   exporterSecret: Uint8Array,
 * }} KeySchedule
 */

/**
 * KeySchedule for mode_base (no PSK).
 * @param {Uint8Array} sharedSecret
 * @param {Uint8Array} info
 * @returns {Promise<KeySchedule>}
 */
async function keySchedule(sharedSecret, info) {
  const pskIdHash = await labeledExtract(HPKE_SUITE_ID, EMPTY, 'psk_id_hash', EMPTY);
  const infoHash = await labeledExtract(HPKE_SUITE_ID, EMPTY, 'info_hash', info);
  const keyScheduleContext = concat(Uint8Array.of(MODE_BASE), pskIdHash, infoHash);
  const secret = await labeledExtract(HPKE_SUITE_ID, sharedSecret, 'secret', EMPTY);
  return {
    sharedSecret,
    keyScheduleContext,
    secret,
    key: await labeledExpand(HPKE_SUITE_ID, secret, 'key', keyScheduleContext, N_K),
    baseNonce: await labeledExpand(HPKE_SUITE_ID, secret, 'base_nonce', keyScheduleContext, N_N),
    exporterSecret: await labeledExpand(HPKE_SUITE_ID, secret, 'exp', keyScheduleContext, N_H),
  };
}

/**
 * An HPKE encryption context: Seal or Open with a sequence number, one direction only.
 */
export class Context {
  /**
   * @param {CryptoKey} key
   * @param {Uint8Array} baseNonce
   * @param {KeySchedule} schedule
   */
  constructor(key, baseNonce, schedule) {
    /** @private */
    this.aeadKey = key;
    /** @private */
    this.baseNonce = baseNonce;
    /** The derived values, for conformance tests. */
    this.schedule = schedule;
    /** The next sequence number. */
    this.seq = 0;
  }

  /**
   * base_nonce XOR I2OSP(seq, Nn). The sequence number stays far below 2^53, let alone the
   * RFC's 2^96 - 1 limit, since a context here seals a handful of messages.
   * @private
   * @returns {Uint8Array}
   */
  nextNonce() {
    const seqBytes = i2osp(this.seq, N_N);
    this.seq += 1;
    return this.baseNonce.map((b, i) => b ^ seqBytes[i]);
  }

  /**
   * @param {Uint8Array} aad
   * @param {Uint8Array} plaintext
   * @returns {Promise<Uint8Array>} ciphertext || tag
   */
  seal(aad, plaintext) {
    return aesGcmSeal(this.aeadKey, this.nextNonce(), aad, plaintext);
  }

  /**
   * Opens the next message; resolves to `null` if it does not authenticate. The sequence
   * number advances only on success, as RFC 9180 specifies.
   * @param {Uint8Array} aad
   * @param {Uint8Array} ciphertext
   * @returns {Promise<Uint8Array | null>}
   */
  async open(aad, ciphertext) {
    const seq = this.seq;
    const plaintext = await aesGcmOpen(this.aeadKey, this.nextNonce(), aad, ciphertext);
    if (plaintext === null) this.seq = seq;
    return plaintext;
  }
}

/**
 * @param {Uint8Array} sharedSecret
 * @param {Uint8Array} info
 * @returns {Promise<Context>}
 */
async function contextFor(sharedSecret, info) {
  const schedule = await keySchedule(sharedSecret, info);
  return new Context(await importAesGcmKey(schedule.key), schedule.baseNonce, schedule);
}

/**
 * SetupBaseS(pkR, info) with the ephemeral key derived from `ikmE` (DeriveKeyPair), so that
 * the caller decides where the randomness comes from. Resolves to `null` when the recipient
 * key is of low order (the shared secret would be zero).
 * @param {Uint8Array} recipientPublic pkR, 32 bytes
 * @param {Uint8Array} info
 * @param {Uint8Array} ikmE 32 bytes of ephemeral randomness
 * @returns {Promise<{ enc: Uint8Array, context: Context } | null>}
 */
export async function setupBaseS(recipientPublic, info, ikmE) {
  if (recipientPublic.length !== N_PK) return null;
  const ephemeral = await deriveKeyPair(ikmE);
  const dh = await x25519(ephemeral.privateKey, recipientPublic);
  if (dh === null) return null;
  const enc = ephemeral.publicKey;
  const sharedSecret = await extractAndExpand(dh, concat(enc, recipientPublic));
  return { enc, context: await contextFor(sharedSecret, info) };
}

/**
 * SetupBaseR(enc, skR, info). Resolves to `null` when `enc` is malformed or of low order.
 * @param {Uint8Array} enc 32 bytes
 * @param {KemKeyPair} recipient skR with its public key pkR
 * @param {Uint8Array} info
 * @returns {Promise<Context | null>}
 */
export async function setupBaseR(enc, recipient, info) {
  if (enc.length !== N_PK) return null;
  const dh = await x25519(recipient.privateKey, enc);
  if (dh === null) return null;
  const sharedSecret = await extractAndExpand(dh, concat(enc, recipient.publicKey));
  return contextFor(sharedSecret, info);
}
