/**
 * Thin wrappers over WebCrypto (`globalThis.crypto.subtle`), the only cryptography this
 * package uses, so that the browser and Node run the same code.
 */
import { concat } from './bytes.js';

const subtle = globalThis.crypto.subtle;

/**
 * Our byte arrays are always backed by a plain ArrayBuffer, never a SharedArrayBuffer
 * (which WebCrypto refuses); recent TypeScript cannot see that through `Uint8Array`, so
 * this says it once, for every call into WebCrypto below.
 * @param {Uint8Array} bytes
 * @returns {BufferSource}
 */
const source = (bytes) => /** @type {BufferSource} */ (bytes);

/**
 * A source of random bytes. The default is the platform's CSPRNG; tests pass a scripted one
 * to reproduce vectors, as the Rust side passes a seeded generator.
 * @typedef {(length: number) => Uint8Array} Rng
 */

/** @type {Rng} */
export function systemRng(length) {
  // getRandomValues fills at most 65536 bytes per call; callers here draw 32 at a time.
  return globalThis.crypto.getRandomValues(new Uint8Array(length));
}

/**
 * Draws from `rng` and checks it returned what was asked for, so that a faulty injected
 * generator fails loudly instead of producing a short key.
 * @param {Rng} rng
 * @param {number} length
 * @returns {Uint8Array}
 */
export function draw(rng, length) {
  const out = rng(length);
  if (!(out instanceof Uint8Array) || out.length !== length) {
    throw new TypeError(`rng must return ${length} bytes`);
  }
  return out;
}

/**
 * @param {Uint8Array} data
 * @returns {Promise<Uint8Array>}
 */
export async function sha256(data) {
  return new Uint8Array(await subtle.digest('SHA-256', source(data)));
}

/**
 * HMAC-SHA256. WebCrypto refuses a zero-length HMAC key, so callers with an empty salt pass
 * 32 zero bytes instead, which HMAC treats identically (both are zero-padded to the block).
 * @param {Uint8Array} key
 * @param {Uint8Array} data
 * @returns {Promise<Uint8Array>}
 */
export async function hmacSha256(key, data) {
  const algorithm = { name: 'HMAC', hash: 'SHA-256' };
  const k = await subtle.importKey('raw', source(key), algorithm, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', k, source(data)));
}

/**
 * HKDF-SHA256 extract and expand in one step (RFC 5869), as WebCrypto provides it.
 * @param {Uint8Array} salt
 * @param {Uint8Array} ikm
 * @param {Uint8Array} info
 * @param {number} length output bytes
 * @returns {Promise<Uint8Array>}
 */
export async function hkdfSha256(salt, ikm, info, length) {
  const k = await subtle.importKey('raw', source(ikm), 'HKDF', false, ['deriveBits']);
  const params = { name: 'HKDF', hash: 'SHA-256', salt: source(salt), info: source(info) };
  const bits = await subtle.deriveBits(params, k, 8 * length);
  return new Uint8Array(bits);
}

/**
 * An AES-256-GCM key for encryption and decryption, not extractable.
 * @param {Uint8Array} raw 32 bytes
 * @returns {Promise<CryptoKey>}
 */
export function importAesGcmKey(raw) {
  return subtle.importKey('raw', source(raw), 'AES-GCM', false, ['encrypt', 'decrypt']);
}

/**
 * AES-GCM with a 96-bit nonce; returns ciphertext followed by the 16-byte tag.
 * @param {CryptoKey} key
 * @param {Uint8Array} nonce 12 bytes
 * @param {Uint8Array} aad
 * @param {Uint8Array} plaintext
 * @returns {Promise<Uint8Array>}
 */
export async function aesGcmSeal(key, nonce, aad, plaintext) {
  const params = {
    name: 'AES-GCM',
    iv: source(nonce),
    additionalData: source(aad),
    tagLength: 128,
  };
  return new Uint8Array(await subtle.encrypt(params, key, source(plaintext)));
}

/**
 * Inverse of {@link aesGcmSeal}; resolves to `null` when the tag does not verify.
 * @param {CryptoKey} key
 * @param {Uint8Array} nonce
 * @param {Uint8Array} aad
 * @param {Uint8Array} sealed ciphertext || tag
 * @returns {Promise<Uint8Array | null>}
 */
export async function aesGcmOpen(key, nonce, aad, sealed) {
  const params = {
    name: 'AES-GCM',
    iv: source(nonce),
    additionalData: source(aad),
    tagLength: 128,
  };
  try {
    return new Uint8Array(await subtle.decrypt(params, key, source(sealed)));
  } catch {
    return null;
  }
}

// PKCS#8 PrivateKeyInfo for a 32-byte RFC 8410 key: SEQUENCE { INTEGER 0, SEQUENCE { OID },
// OCTET STRING { OCTET STRING (32) } }. WebCrypto accepts no other way to import a raw
// X25519 scalar or Ed25519 seed (JWK would also need the public key, which we do not have).
const PKCS8_X25519_PREFIX = Uint8Array.of(
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x6e,
  0x04,
  0x22,
  0x04,
  0x20,
);
const PKCS8_ED25519_PREFIX = Uint8Array.of(
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
);

/**
 * Imports a raw 32-byte X25519 secret scalar (unclamped; X25519 clamps it on use).
 * @param {Uint8Array} secret
 * @param {boolean} extractable
 * @returns {Promise<CryptoKey>}
 */
export function importX25519Secret(secret, extractable) {
  const der = source(concat(PKCS8_X25519_PREFIX, secret));
  return subtle.importKey('pkcs8', der, { name: 'X25519' }, extractable, ['deriveBits']);
}

/**
 * Imports a raw 32-byte X25519 public key.
 * @param {Uint8Array} publicKey
 * @returns {Promise<CryptoKey>}
 */
export function importX25519Public(publicKey) {
  return subtle.importKey('raw', source(publicKey), { name: 'X25519' }, true, []);
}

const BASE_POINT = new Uint8Array(32);
BASE_POINT[0] = 9;

/**
 * X25519(secret, peer). Resolves to `null` when the result is all zeros (a low-order peer
 * key), which RFC 7748 and RFC 9180 require refusing; WebCrypto may also throw for it.
 * @param {CryptoKey} secret
 * @param {Uint8Array} peerPublic 32 bytes
 * @returns {Promise<Uint8Array | null>}
 */
export async function x25519(secret, peerPublic) {
  let out;
  try {
    const peer = await importX25519Public(peerPublic);
    out = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: peer }, secret, 256));
  } catch {
    return null;
  }
  return out.every((b) => b === 0) ? null : out;
}

/**
 * The public key of an X25519 secret, `X25519(secret, 9)`, computed through `deriveBits`
 * with the base point so that it works for non-extractable keys too.
 * @param {CryptoKey} secret
 * @returns {Promise<Uint8Array>}
 */
export async function x25519PublicOf(secret) {
  const out = await x25519(secret, BASE_POINT);
  if (out === null) throw new Error('X25519 with the base point cannot be zero');
  return out;
}

/**
 * Imports a 32-byte Ed25519 seed and returns the signing key with its public key. The key is
 * imported extractable once to read the public half (JWK `x`), then, unless asked otherwise,
 * again as non-extractable for use.
 * @param {Uint8Array} seed
 * @param {boolean} extractable
 * @returns {Promise<{ privateKey: CryptoKey, publicKey: Uint8Array }>}
 */
export async function importEd25519Seed(seed, extractable) {
  const der = source(concat(PKCS8_ED25519_PREFIX, seed));
  const readable = await subtle.importKey('pkcs8', der, { name: 'Ed25519' }, true, ['sign']);
  const jwk = await subtle.exportKey('jwk', readable);
  const publicKey = base64UrlDecode(/** @type {string} */ (jwk.x));
  const privateKey = extractable
    ? readable
    : await subtle.importKey('pkcs8', der, { name: 'Ed25519' }, false, ['sign']);
  return { privateKey, publicKey };
}

/**
 * @param {string} text unpadded base64url
 * @returns {Uint8Array}
 */
function base64UrlDecode(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/**
 * Ed25519 signature (deterministic, RFC 8032).
 * @param {CryptoKey} privateKey
 * @param {Uint8Array} message
 * @returns {Promise<Uint8Array>} 64 bytes
 */
export async function ed25519Sign(privateKey, message) {
  return new Uint8Array(await subtle.sign({ name: 'Ed25519' }, privateKey, source(message)));
}

/**
 * Plain RFC 8032 verification by the platform; {@link verifyStrict} in ed25519.js adds the
 * checks that make it strict.
 * @param {Uint8Array} publicKey
 * @param {Uint8Array} message
 * @param {Uint8Array} signature
 * @returns {Promise<boolean>}
 */
export async function ed25519VerifyPlain(publicKey, message, signature) {
  try {
    const key = await subtle.importKey('raw', source(publicKey), { name: 'Ed25519' }, true, [
      'verify',
    ]);
    return await subtle.verify({ name: 'Ed25519' }, key, source(signature), source(message));
  } catch {
    return false;
  }
}

/**
 * Fresh key pairs from the platform, private halves not extractable.
 * @returns {Promise<{ x25519: CryptoKeyPair, ed25519: CryptoKeyPair }>}
 */
export async function generateKeyPairs() {
  const x = /** @type {CryptoKeyPair} */ (
    await subtle.generateKey({ name: 'X25519' }, false, ['deriveBits'])
  );
  const ed = /** @type {CryptoKeyPair} */ (
    await subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])
  );
  return { x25519: x, ed25519: ed };
}

/**
 * Raw bytes of a public key.
 * @param {CryptoKey} publicKey
 * @returns {Promise<Uint8Array>}
 */
export async function exportRawPublic(publicKey) {
  return new Uint8Array(await subtle.exportKey('raw', publicKey));
}
