/**
 * Envelope v1: one message sealed once for several recipients (docs/ENVELOPE.md,
 * "Envelope v1"). Wire order is `header || payload digest || signature || wrapped keys ||
 * chunks`.
 */
import { bytesEqual, concat, expectLength, FORMAT_VERSION, Reader, utf8, Writer } from './bytes.js';
import { verifyStrict } from './ed25519.js';
import { fail } from './errors.js';
import { setupBaseR, setupBaseS } from './hpke.js';
import { ID_LEN } from './identity.js';
import {
  aesGcmOpen,
  aesGcmSeal,
  draw,
  ed25519Sign,
  hkdfSha256,
  importAesGcmKey,
  sha256,
  systemRng,
} from './primitives.js';

/** Plaintext bytes per chunk: the most a toy must hold in memory to decrypt. */
export const CHUNK_SIZE = 16384;
/** AES-256-GCM tag appended to every chunk. */
export const TAG_LEN = 16;
/** Most recipients one envelope may name. */
export const MAX_RECIPIENTS = 64;
/** Largest plaintext payload (32 MiB). */
export const MAX_PAYLOAD_LEN = 32 * 1024 * 1024;
/** Most chunks an envelope can have. */
export const MAX_CHUNK_COUNT = MAX_PAYLOAD_LEN / CHUNK_SIZE;
/** Length of the header before the recipient list. */
export const HEADER_FIXED_LEN = 72;
/** HPKE `enc` (32) then the sealed content key and its tag (48). */
export const WRAPPED_KEY_LEN = 80;
/** SHA-256 of the chunks. */
export const PAYLOAD_DIGEST_LEN = 32;
/** Ed25519 signature. */
export const SIGNATURE_LEN = 64;

/** What the payload is. */
export const MediaType = Object.freeze({ OGG_OPUS: 1, IMAGE: 2, TEXT: 3, JSON: 4 });
/** @type {readonly number[]} */
const MEDIA_TYPES = Object.values(MediaType);

const SIGNATURE_DOMAIN = utf8('pawpost/v1/envelope-signature');
const KEY_WRAP_DOMAIN = utf8('pawpost/v1/content-key');
const PAYLOAD_KEY_DOMAIN = utf8('pawpost/v1/payload');
const NONCE_PREFIX_LEN = 7;
const CONTENT_KEY_LEN = 32;

/**
 * The signed, cleartext description of a message; its encoding is the associated data of
 * every chunk.
 * @typedef {{
 *   mediaType: number,
 *   messageId: Uint8Array,
 *   householdId: Uint8Array,
 *   sender: Uint8Array,
 *   createdAtMs: bigint,
 *   durationMs: number,
 *   payloadLen: number,
 *   recipients: Uint8Array[],
 * }} EnvelopeHeader
 */

/**
 * Everything before the chunks: enough to check who sent what to whom, without a key.
 * @typedef {{
 *   header: EnvelopeHeader,
 *   headerBytes: Uint8Array,
 *   payloadDigest: Uint8Array,
 *   signature: Uint8Array,
 *   wrappedKeys: Uint8Array[],
 * }} EnvelopePrefix
 */

/**
 * What a message is about, chosen by the sender. `recipients` keep their order in the header.
 * @typedef {{
 *   messageId: Uint8Array,
 *   householdId: Uint8Array,
 *   createdAtMs: number | bigint,
 *   mediaType: number,
 *   durationMs: number,
 *   recipients: import('./identity.js').PublicIdentity[],
 * }} MessageParams
 */

/**
 * Number of chunks: at least one, so that even an empty payload carries an authenticated
 * last chunk.
 * @param {number} payloadLen
 * @returns {number}
 */
export function chunkCount(payloadLen) {
  return Math.max(1, Math.ceil(payloadLen / CHUNK_SIZE));
}

/**
 * Total length of the chunks, ciphertext and tags.
 * @param {number} payloadLen
 * @returns {number}
 */
export function ciphertextLen(payloadLen) {
  return payloadLen + TAG_LEN * chunkCount(payloadLen);
}

/**
 * @param {number} payloadLen
 * @param {number} index
 * @returns {number} plaintext bytes in chunk `index`
 */
function chunkPlainLen(payloadLen, index) {
  return Math.min(CHUNK_SIZE, Math.max(0, payloadLen - index * CHUNK_SIZE));
}

/**
 * @param {number} count
 */
function checkRecipientCount(count) {
  if (count === 0) fail('no_recipients', 'envelope has no recipient');
  if (count > MAX_RECIPIENTS) fail('too_many_recipients', 'too many recipients');
}

/**
 * Canonical header encoding.
 * @param {EnvelopeHeader} header
 * @returns {Uint8Array}
 */
export function encodeHeader(header) {
  if (!MEDIA_TYPES.includes(header.mediaType)) {
    throw new RangeError(`unknown media type ${header.mediaType}`);
  }
  const w = new Writer()
    .u8(FORMAT_VERSION)
    .u8(header.mediaType)
    .bytes(expectLength(header.messageId, ID_LEN, 'messageId'))
    .bytes(expectLength(header.householdId, ID_LEN, 'householdId'))
    .bytes(expectLength(header.sender, ID_LEN, 'sender'))
    .u64(header.createdAtMs)
    .u32(header.durationMs)
    .u64(header.payloadLen)
    .u16(header.recipients.length);
  for (const id of header.recipients) w.bytes(expectLength(id, ID_LEN, 'recipient id'));
  return w.finish();
}

/**
 * Reads a header; counts and sizes are checked before what they count is read.
 * @param {Reader} r
 * @returns {EnvelopeHeader}
 */
function readHeader(r) {
  r.version();
  const mediaType = r.u8();
  if (!MEDIA_TYPES.includes(mediaType)) fail('unknown_media_type', 'unknown media type');
  const messageId = r.copy(ID_LEN);
  const householdId = r.copy(ID_LEN);
  const sender = r.copy(ID_LEN);
  const createdAtMs = r.u64();
  const durationMs = r.u32();
  const payloadLen = r.u64();
  if (payloadLen > BigInt(MAX_PAYLOAD_LEN)) fail('payload_too_large', 'payload too large');
  const count = r.u16();
  checkRecipientCount(count);
  /** @type {Uint8Array[]} */
  const recipients = [];
  for (let i = 0; i < count; i++) {
    const id = r.copy(ID_LEN);
    if (recipients.some((other) => bytesEqual(other, id))) {
      fail('duplicate_recipient', 'recipient listed twice');
    }
    recipients.push(id);
  }
  return {
    mediaType,
    messageId,
    householdId,
    sender,
    createdAtMs,
    durationMs,
    payloadLen: Number(payloadLen),
    recipients,
  };
}

/**
 * Strict decode of a header alone.
 * @param {Uint8Array} bytes
 * @returns {EnvelopeHeader}
 */
export function parseHeader(bytes) {
  const r = new Reader(bytes);
  const header = readHeader(r);
  r.finish();
  return header;
}

/**
 * Parses the prefix at the start of `bytes`; returns it with the bytes after it (the start
 * of the chunks). Checks structure and limits, no signature.
 * @param {Uint8Array} bytes
 * @returns {{ prefix: EnvelopePrefix, rest: Uint8Array }}
 */
export function parseEnvelopePrefix(bytes) {
  const r = new Reader(bytes);
  const header = readHeader(r);
  const headerBytes = bytes.slice(0, r.offset);
  const payloadDigest = r.copy(PAYLOAD_DIGEST_LEN);
  const signature = r.copy(SIGNATURE_LEN);
  const wrappedKeys = header.recipients.map(() => r.copy(WRAPPED_KEY_LEN));
  return {
    prefix: { header, headerBytes, payloadDigest, signature, wrappedKeys },
    rest: bytes.subarray(r.offset),
  };
}

/**
 * Strict parse of a whole envelope: the chunks must be exactly as long as the header says.
 * @param {Uint8Array} bytes
 * @returns {{ prefix: EnvelopePrefix, ciphertext: Uint8Array }}
 */
export function parseEnvelope(bytes) {
  const { prefix, rest } = parseEnvelopePrefix(bytes);
  const expected = ciphertextLen(prefix.header.payloadLen);
  if (rest.length < expected) fail('truncated', 'input is truncated');
  if (rest.length > expected) fail('trailing_bytes', 'unexpected bytes after the last chunk');
  return { prefix, ciphertext: rest };
}

/**
 * @param {Uint8Array} headerBytes
 * @param {Uint8Array} payloadDigest
 * @returns {Uint8Array}
 */
function signatureInput(headerBytes, payloadDigest) {
  return concat(SIGNATURE_DOMAIN, headerBytes, payloadDigest);
}

/**
 * HPKE `info`: the domain, then SHA-256 of the header, so that a wrapped key opens only with
 * the header it was made for.
 * @param {Uint8Array} headerBytes
 * @returns {Promise<Uint8Array>}
 */
async function keyWrapInfo(headerBytes) {
  return concat(KEY_WRAP_DOMAIN, await sha256(headerBytes));
}

/**
 * Checks that `sender` is the device the header names and that its signature over header and
 * payload digest verifies. Needs no private key.
 * @param {EnvelopePrefix} prefix
 * @param {import('./identity.js').PublicIdentity} sender
 * @returns {Promise<void>}
 */
export async function verifySender(prefix, sender) {
  if (!bytesEqual(sender.deviceId, prefix.header.sender)) {
    fail('wrong_sender', 'the envelope names a different sender');
  }
  const input = signatureInput(prefix.headerBytes, prefix.payloadDigest);
  if (!(await verifyStrict(sender.ed25519Pub, input, prefix.signature))) {
    fail('bad_signature', "the sender's signature does not verify");
  }
}

/**
 * Checks that the envelope belongs to the roster's household, that its sender is an
 * approved member there, and that the sender's signature verifies. Returns the sender.
 * @param {EnvelopePrefix} prefix
 * @param {import('./roster.js').Roster} roster a roster the caller already trusts
 * @returns {Promise<import('./identity.js').PublicIdentity>}
 */
export async function verifySenderInRoster(prefix, roster) {
  if (!bytesEqual(roster.householdId, prefix.header.householdId)) {
    fail('wrong_household', 'the envelope belongs to another household');
  }
  // The recovery key signs rosters only: it never sends.
  const member = roster.members.find(
    (m) =>
      m.status === 'approved' &&
      m.role !== 'recovery' &&
      bytesEqual(m.deviceId, prefix.header.sender),
  );
  if (!member) fail('sender_not_approved', 'the sender is not an approved member of the household');
  const sender = {
    deviceId: member.deviceId,
    x25519Pub: member.x25519Pub,
    ed25519Pub: member.ed25519Pub,
  };
  await verifySender(prefix, sender);
  return sender;
}

/**
 * AES-256-GCM over the chunks: `HKDF-SHA256(salt = message id, ikm = content key,
 * info = "pawpost/v1/payload")` gives 39 bytes, the key then the 7-byte nonce prefix; the
 * nonce carries the chunk index and a last-chunk flag, so moving, repeating, dropping or
 * adding a chunk fails.
 */
class ChunkCipher {
  /**
   * @param {CryptoKey} key
   * @param {Uint8Array} noncePrefix
   */
  constructor(key, noncePrefix) {
    /** @private */
    this.key = key;
    /** @private */
    this.noncePrefix = noncePrefix;
  }

  /**
   * @param {Uint8Array} contentKey
   * @param {Uint8Array} messageId
   * @returns {Promise<ChunkCipher>}
   */
  static async derive(contentKey, messageId) {
    const okm = await hkdfSha256(messageId, contentKey, PAYLOAD_KEY_DOMAIN, 32 + NONCE_PREFIX_LEN);
    return new ChunkCipher(await importAesGcmKey(okm.subarray(0, 32)), okm.slice(32));
  }

  /**
   * `nonce prefix (7) || index (u32 big-endian) || last (0x01 or 0x00)`.
   * @param {number} index
   * @param {boolean} last
   * @returns {Uint8Array}
   */
  nonce(index, last) {
    return new Writer().bytes(this.noncePrefix).u32(index).bool(last).finish();
  }

  /**
   * Seals every chunk of `payload`; the result is the chunks as on the wire.
   * @param {Uint8Array} headerBytes
   * @param {Uint8Array} payload
   * @returns {Promise<Uint8Array>}
   */
  async sealAll(headerBytes, payload) {
    const count = chunkCount(payload.length);
    const chunks = [];
    for (let i = 0; i < count; i++) {
      const plain = payload.subarray(
        i * CHUNK_SIZE,
        i * CHUNK_SIZE + chunkPlainLen(payload.length, i),
      );
      chunks.push(aesGcmSeal(this.key, this.nonce(i, i + 1 === count), headerBytes, plain));
    }
    return concat(...(await Promise.all(chunks)));
  }

  /**
   * Opens every chunk at its index with its last flag; fails with `chunk_authentication` if
   * any one does not authenticate in its position.
   * @param {Uint8Array} headerBytes
   * @param {number} payloadLen
   * @param {Uint8Array} ciphertext exactly `ciphertextLen(payloadLen)` bytes
   * @returns {Promise<Uint8Array>}
   */
  async openAll(headerBytes, payloadLen, ciphertext) {
    const count = chunkCount(payloadLen);
    const chunks = [];
    for (let i = 0, offset = 0; i < count; i++) {
      const len = chunkPlainLen(payloadLen, i) + TAG_LEN;
      const sealed = ciphertext.subarray(offset, offset + len);
      chunks.push(aesGcmOpen(this.key, this.nonce(i, i + 1 === count), headerBytes, sealed));
      offset += len;
    }
    const plain = await Promise.all(chunks);
    /** @type {Uint8Array[]} */
    const opened = [];
    for (const p of plain) {
      if (p === null) fail('chunk_authentication', 'a chunk does not authenticate');
      opened.push(p);
    }
    return concat(...opened);
  }
}

/**
 * Seals `payload` for every recipient and signs it as `sender`.
 *
 * Randomness comes from `options.rng` (the platform CSPRNG by default), drawn in the same
 * order as the Rust implementation: the 32-byte content key, then 32 bytes of HPKE
 * ephemeral IKM per recipient in header order. Everything else is deterministic, so a
 * scripted `rng` reproduces the committed vectors.
 * @param {import('./identity.js').DeviceKeys} sender
 * @param {MessageParams} params
 * @param {Uint8Array} payload
 * @param {{ rng?: import('./primitives.js').Rng }} [options]
 * @returns {Promise<Uint8Array>} the envelope
 */
export async function sealEnvelope(sender, params, payload, options = {}) {
  const rng = options.rng ?? systemRng;
  checkRecipientCount(params.recipients.length);
  if (payload.length > MAX_PAYLOAD_LEN) fail('payload_too_large', 'payload too large');
  /** @type {Uint8Array[]} */
  const recipients = [];
  for (const r of params.recipients) {
    if (recipients.some((id) => bytesEqual(id, r.deviceId))) {
      fail('duplicate_recipient', 'a recipient is listed twice');
    }
    recipients.push(r.deviceId);
  }
  const headerBytes = encodeHeader({
    mediaType: params.mediaType,
    messageId: params.messageId,
    householdId: params.householdId,
    sender: sender.deviceId,
    createdAtMs: BigInt(params.createdAtMs),
    durationMs: params.durationMs,
    payloadLen: payload.length,
    recipients,
  });

  const contentKey = draw(rng, CONTENT_KEY_LEN);
  const ephemeralIkms = params.recipients.map(() => draw(rng, 32));

  const cipher = await ChunkCipher.derive(contentKey, params.messageId);
  const chunks = await cipher.sealAll(headerBytes, payload);
  const payloadDigest = await sha256(chunks);
  const signature = await ed25519Sign(
    sender.ed25519Private,
    signatureInput(headerBytes, payloadDigest),
  );

  const info = await keyWrapInfo(headerBytes);
  const wrapped = await Promise.all(
    params.recipients.map(async (r, k) => {
      const setup = await setupBaseS(r.x25519Pub, info, ephemeralIkms[k]);
      if (setup === null) fail('invalid_recipient_key', "a recipient's encryption key is invalid");
      return concat(setup.enc, await setup.context.seal(r.deviceId, contentKey));
    }),
  );
  return concat(headerBytes, payloadDigest, signature, ...wrapped, chunks);
}

/**
 * A message opened by one of its recipients.
 * @typedef {{ header: EnvelopeHeader, payload: Uint8Array }} OpenedMessage
 */

/**
 * Opens a complete envelope. Checks, in the documented order: structure and limits, that
 * `sender` is the header's sender, the signature, that `recipient` is a recipient, the
 * payload digest, the wrapped key, then every chunk. The caller must already trust `sender`
 * (an approved member of its current roster, see {@link verifySenderInRoster}).
 * @param {Uint8Array} envelope
 * @param {import('./identity.js').DeviceKeys} recipient
 * @param {import('./identity.js').PublicIdentity} sender
 * @returns {Promise<OpenedMessage>}
 */
export async function openEnvelope(envelope, recipient, sender) {
  const { prefix, ciphertext } = parseEnvelope(envelope);
  const { header, headerBytes } = prefix;
  await verifySender(prefix, sender);
  const index = header.recipients.findIndex((id) => bytesEqual(id, recipient.deviceId));
  if (index < 0) fail('not_a_recipient', 'this device is not a recipient');
  if (!bytesEqual(await sha256(ciphertext), prefix.payloadDigest)) {
    fail('payload_digest_mismatch', 'the payload does not match the signed digest');
  }
  const contentKey = await unwrapContentKey(prefix, index, recipient);
  const cipher = await ChunkCipher.derive(contentKey, header.messageId);
  const payload = await cipher.openAll(headerBytes, header.payloadLen, ciphertext);
  return { header, payload };
}

/**
 * Opens this device's wrapped content key with HPKE; any failure is `key_unwrap`.
 * @param {EnvelopePrefix} prefix
 * @param {number} index
 * @param {import('./identity.js').DeviceKeys} recipient
 * @returns {Promise<Uint8Array>}
 */
async function unwrapContentKey(prefix, index, recipient) {
  const wrapped = prefix.wrappedKeys[index];
  const info = await keyWrapInfo(prefix.headerBytes);
  const context = await setupBaseR(
    wrapped.subarray(0, 32),
    { privateKey: recipient.x25519Private, publicKey: recipient.public.x25519Pub },
    info,
  );
  const key = context && (await context.open(recipient.deviceId, wrapped.subarray(32)));
  if (!key || key.length !== CONTENT_KEY_LEN) {
    fail('key_unwrap', 'the content key for this device does not decrypt');
  }
  return key;
}
