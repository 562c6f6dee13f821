/**
 * Device identities: the key pairs a device makes for itself, the public half others see,
 * and the fingerprint people compare (docs/ENVELOPE.md, "Device identity").
 */
import { concat, expectLength, FORMAT_VERSION, Reader, utf8, Writer } from './bytes.js';
import { isValidEd25519PublicKey } from './ed25519.js';
import { fail } from './errors.js';
import {
  draw,
  exportRawPublic,
  generateKeyPairs,
  importEd25519Seed,
  importX25519Secret,
  sha256,
  x25519PublicOf,
} from './primitives.js';

/** Length of an encoded public identity. */
export const PUBLIC_IDENTITY_LEN = 81;
/** Length of an encoded device secret. */
export const DEVICE_SECRET_LEN = 81;
/** Length of every id (device, household, message, account): a UUID's 16 bytes. */
export const ID_LEN = 16;

const FINGERPRINT_DOMAIN = utf8('pawpost/v1/fingerprint');
const SAFETY_NUMBER_DOMAIN = utf8('pawpost/v1/safety-number');

/**
 * The public half of a device identity.
 * @typedef {{ deviceId: Uint8Array, x25519Pub: Uint8Array, ed25519Pub: Uint8Array }} PublicIdentity
 */

/**
 * A device's own keys. The private halves are CryptoKeys, non-extractable unless they were
 * imported from bytes on request; `public` is what goes into the roster.
 * @typedef {{
 *   deviceId: Uint8Array,
 *   x25519Private: CryptoKey,
 *   ed25519Private: CryptoKey,
 *   public: PublicIdentity,
 * }} DeviceKeys
 */

/**
 * The raw secrets of a device, as in the 81-byte device secret encoding.
 * @typedef {{
 *   deviceId: Uint8Array,
 *   x25519Secret: Uint8Array,
 *   ed25519Seed: Uint8Array,
 * }} DeviceSecret
 */

/**
 * `version (1) || device_id (16) || x25519_pub (32) || ed25519_pub (32)`.
 * @param {PublicIdentity} identity
 * @returns {Uint8Array}
 */
export function encodePublicIdentity(identity) {
  return new Writer()
    .u8(FORMAT_VERSION)
    .bytes(expectLength(identity.deviceId, ID_LEN, 'deviceId'))
    .bytes(expectLength(identity.x25519Pub, 32, 'x25519Pub'))
    .bytes(expectLength(identity.ed25519Pub, 32, 'ed25519Pub'))
    .finish();
}

/**
 * Strict decode of {@link encodePublicIdentity}'s output. Refuses an Ed25519 key that is not
 * a curve point or has small order (`invalid_key`): signatures could be forged for it.
 * @param {Uint8Array} bytes
 * @returns {PublicIdentity}
 */
export function decodePublicIdentity(bytes) {
  const r = new Reader(bytes);
  r.version();
  const deviceId = r.copy(ID_LEN);
  const identity = readKeys(r, deviceId);
  r.finish();
  return identity;
}

/**
 * Reads the two public keys that follow a device id (in an identity or a roster member).
 * @param {Reader} r
 * @param {Uint8Array} deviceId
 * @returns {PublicIdentity}
 */
export function readKeys(r, deviceId) {
  const x25519Pub = r.copy(32);
  const ed25519Pub = r.copy(32);
  if (!isValidEd25519PublicKey(ed25519Pub)) fail('invalid_key', 'invalid public key');
  return { deviceId, x25519Pub, ed25519Pub };
}

/**
 * `version (1) || device_id (16) || x25519 secret (32) || ed25519 seed (32)`. For devices
 * whose keys exist as bytes (tools, the toy); a browser keeps non-extractable CryptoKeys.
 * @param {DeviceSecret} secret
 * @returns {Uint8Array}
 */
export function encodeDeviceSecret(secret) {
  return new Writer()
    .u8(FORMAT_VERSION)
    .bytes(expectLength(secret.deviceId, ID_LEN, 'deviceId'))
    .bytes(expectLength(secret.x25519Secret, 32, 'x25519Secret'))
    .bytes(expectLength(secret.ed25519Seed, 32, 'ed25519Seed'))
    .finish();
}

/**
 * Strict decode of {@link encodeDeviceSecret}'s output.
 * @param {Uint8Array} bytes
 * @returns {DeviceSecret}
 */
export function decodeDeviceSecret(bytes) {
  const r = new Reader(bytes);
  r.version();
  const secret = { deviceId: r.copy(ID_LEN), x25519Secret: r.copy(32), ed25519Seed: r.copy(32) };
  r.finish();
  return secret;
}

/**
 * Rebuilds a device's keys from its raw secrets.
 * @param {DeviceSecret} secret
 * @param {{ extractable?: boolean }} [options] keep false outside tests and tools
 * @returns {Promise<DeviceKeys>}
 */
export async function deviceKeysFromSecret(secret, options = {}) {
  const extractable = options.extractable ?? false;
  const deviceId = expectLength(secret.deviceId, ID_LEN, 'deviceId').slice();
  const x25519Private = await importX25519Secret(
    expectLength(secret.x25519Secret, 32, 'x25519Secret'),
    extractable,
  );
  const ed = await importEd25519Seed(
    expectLength(secret.ed25519Seed, 32, 'ed25519Seed'),
    extractable,
  );
  return {
    deviceId,
    x25519Private,
    ed25519Private: ed.privateKey,
    public: { deviceId, x25519Pub: await x25519PublicOf(x25519Private), ed25519Pub: ed.publicKey },
  };
}

/**
 * Makes a device's keys. Without `rng`, WebCrypto generates them non-extractable, so the
 * private halves can never be read out. With `rng` (tests and vectors), 32 bytes are drawn
 * for the X25519 secret and then 32 for the Ed25519 seed, the order the Rust side uses.
 * @param {Uint8Array} deviceId 16 bytes
 * @param {{ rng?: import('./primitives.js').Rng }} [options]
 * @returns {Promise<DeviceKeys>}
 */
export async function generateDeviceKeys(deviceId, options = {}) {
  expectLength(deviceId, ID_LEN, 'deviceId');
  if (options.rng) {
    const x25519Secret = draw(options.rng, 32);
    const ed25519Seed = draw(options.rng, 32);
    return deviceKeysFromSecret({ deviceId, x25519Secret, ed25519Seed });
  }
  const pairs = await generateKeyPairs();
  const id = deviceId.slice();
  return {
    deviceId: id,
    x25519Private: pairs.x25519.privateKey,
    ed25519Private: pairs.ed25519.privateKey,
    public: {
      deviceId: id,
      x25519Pub: await exportRawPublic(pairs.x25519.publicKey),
      ed25519Pub: await exportRawPublic(pairs.ed25519.publicKey),
    },
  };
}

/**
 * The safety number: SHA-256 of the domain and both public keys; group `i` is the
 * big-endian integer of digest bytes `5i..5i+5` modulo 100000, shown zero-padded to five
 * digits, six groups separated by single spaces. The device id is not included.
 * @param {PublicIdentity} identity
 * @returns {Promise<string>} for example `48295 37525 84485 39333 95224 98917`
 */
export async function fingerprint(identity) {
  const d = await sha256(concat(FINGERPRINT_DOMAIN, identity.x25519Pub, identity.ed25519Pub));
  const groups = [];
  for (let i = 0; i < 6; i++) {
    // 40 bits exceed 32-bit bitwise operators but not a double's 53-bit integers.
    let value = 0;
    for (const b of d.subarray(5 * i, 5 * i + 5)) value = value * 256 + b;
    groups.push(String(value % 100000).padStart(5, '0'));
  }
  return groups.join(' ');
}

/**
 * The short safety number a toy speaks: SHA-256 of its domain and both public keys; the
 * big-endian integer of digest bytes 0..5 modulo 1000000, zero-padded to six digits and
 * written as two groups of three (docs/ENVELOPE.md, "Safety number").
 * @param {{ x25519Pub: Uint8Array, ed25519Pub: Uint8Array }} identity
 * @returns {Promise<string>} for example `048 193`
 */
export async function safetyNumber(identity) {
  const d = await sha256(concat(SAFETY_NUMBER_DOMAIN, identity.x25519Pub, identity.ed25519Pub));
  let value = 0;
  for (const b of d.subarray(0, 5)) value = value * 256 + b;
  const digits = String(value % 1000000).padStart(6, '0');
  return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}
