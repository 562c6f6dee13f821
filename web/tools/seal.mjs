#!/usr/bin/env node
// Seals an envelope or signs a roster with the browser implementation, for checks from
// other implementations (the Rust crate's cross_js test). Reads one JSON request on stdin,
// prints the result as hex on stdout.
//
//   node web/tools/seal.mjs [seal]      request:
//     { "sender": "<device secret, 81 bytes hex>",
//       "recipients": ["<public identity, 81 bytes hex>", ...],
//       "message": { "message_id": hex, "household_id": hex, "created_at_ms": n,
//                    "media_type": n, "duration_ms": n },
//       "payload": hex,
//       "random": hex (optional: the content key, then 32 bytes of HPKE IKM per recipient) }
//     prints the envelope.
//
//   node web/tools/seal.mjs sign-roster  request:
//     { "signer": "<device secret hex>",
//       "roster": { "household_id", "version", "previous_digest", "settings": {
//                   "quiet_hours": null | { "start_minute", "end_minute" },
//                   "timezone_offset_minutes", "parent_approves_before_play",
//                   "retention_days" },
//                   "members": [{ "device_id", "account_id", "role", "status",
//                                 "x25519_pub", "ed25519_pub" }] } }
//     (the layout of the roster vectors) prints the signed roster. With
//     "recovery_code": "<20 code bytes hex>" instead of "signer", the household's recovery
//     key of that code signs.
//
//   node web/tools/seal.mjs sign-certificate  request:
//     { "certifier": "<device secret hex>", "account_id": hex,
//       "identity": "<certified public identity, 81 bytes hex>" }
//     prints the certificate's signature.
//
// Numbers may also be given as decimal strings, for u64 values beyond 2^53.
import { text } from 'node:stream/consumers';

import {
  decodeDeviceSecret,
  decodePublicIdentity,
  deviceKeysFromSecret,
  encodeSignedRoster,
  fromHex,
  PawpostCryptoError,
  recoverySigner,
  sealEnvelope,
  signCertificate,
  signRoster,
  toHex,
} from '../js/crypto/index.js';

/**
 * @param {string} hex
 */
function signerKeys(hex) {
  return deviceKeysFromSecret(decodeDeviceSecret(fromHex(hex)));
}

/**
 * Exactly the bytes given, then an error: a request that supplies randomness must supply all
 * of it.
 * @param {Uint8Array} bytes
 */
function fixedRng(bytes) {
  let offset = 0;
  return {
    /** @param {number} n */
    rng(n) {
      if (offset + n > bytes.length) throw new Error('"random" is too short');
      offset += n;
      return bytes.slice(offset - n, offset);
    },
    left: () => bytes.length - offset,
  };
}

/**
 * @param {any} request
 * @returns {Promise<Uint8Array>}
 */
async function seal(request) {
  const sender = await signerKeys(request.sender);
  const m = request.message;
  const params = {
    messageId: fromHex(m.message_id),
    householdId: fromHex(m.household_id),
    createdAtMs: BigInt(m.created_at_ms),
    mediaType: Number(m.media_type),
    durationMs: Number(m.duration_ms),
    recipients: request.recipients.map((/** @type {string} */ r) =>
      decodePublicIdentity(fromHex(r)),
    ),
  };
  const payload = fromHex(request.payload);
  if (request.random === undefined) return sealEnvelope(sender, params, payload);
  const fixed = fixedRng(fromHex(request.random));
  const envelope = await sealEnvelope(sender, params, payload, { rng: fixed.rng });
  if (fixed.left() !== 0) throw new Error('"random" has bytes left over');
  return envelope;
}

/**
 * @param {any} request
 * @returns {Promise<Uint8Array>}
 */
async function signRosterRequest(request) {
  const r = request.roster;
  const s = r.settings;
  const roster = {
    householdId: fromHex(r.household_id),
    version: BigInt(r.version),
    previousDigest: fromHex(r.previous_digest),
    settings: {
      quietHours: s.quiet_hours
        ? {
            startMinute: Number(s.quiet_hours.start_minute),
            endMinute: Number(s.quiet_hours.end_minute),
          }
        : null,
      timezoneOffsetMinutes: Number(s.timezone_offset_minutes),
      parentApprovesBeforePlay: Boolean(s.parent_approves_before_play),
      retentionDays: Number(s.retention_days),
    },
    members: r.members.map((/** @type {any} */ m) => ({
      deviceId: fromHex(m.device_id),
      accountId: fromHex(m.account_id),
      role: m.role,
      status: m.status,
      x25519Pub: fromHex(m.x25519_pub),
      ed25519Pub: fromHex(m.ed25519_pub),
    })),
  };
  const signer =
    request.recovery_code === undefined
      ? await signerKeys(request.signer)
      : (await recoverySigner(fromHex(request.recovery_code))).keys;
  return encodeSignedRoster(await signRoster(roster, signer));
}

/**
 * @param {any} request
 * @returns {Promise<Uint8Array>}
 */
async function signCertificateRequest(request) {
  const certifier = await signerKeys(request.certifier);
  return signCertificate(certifier, fromHex(request.account_id), fromHex(request.identity));
}

const modes = {
  seal,
  'sign-roster': signRosterRequest,
  'sign-certificate': signCertificateRequest,
};
const mode = process.argv[2] ?? 'seal';

try {
  if (!Object.hasOwn(modes, mode)) {
    throw new Error(`unknown mode ${mode}; use seal, sign-roster or sign-certificate`);
  }
  const request = JSON.parse(await text(process.stdin));
  const out = await modes[/** @type {keyof typeof modes} */ (mode)](request);
  process.stdout.write(`${toHex(out)}\n`);
} catch (e) {
  const code = e instanceof PawpostCryptoError ? `${e.code}: ` : '';
  process.stderr.write(`seal.mjs ${mode}: ${code}${e instanceof Error ? e.message : e}\n`);
  process.exitCode = 1;
}
