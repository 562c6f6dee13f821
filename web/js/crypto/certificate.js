/**
 * Device certificates: an existing device of an account signs a new device's public
 * identity, so that owners can tell a device its account really added from one the server
 * lists on its own; and the link code a new device shows so that the right one is signed
 * (docs/ENVELOPE.md, "Device certificates").
 */
import { concat, expectLength, utf8 } from './bytes.js';
import { verifyStrict } from './ed25519.js';
import { ID_LEN, PUBLIC_IDENTITY_LEN } from './identity.js';
import { ed25519Sign, sha256 } from './primitives.js';

/** Length of a certificate's signature. */
export const CERTIFICATE_SIGNATURE_LEN = 64;
/** Digits in a link code, shown in groups of 4. */
export const LINK_CODE_DIGITS = 16;

const CERTIFICATE_DOMAIN = utf8('pawpost/v1/device-certificate');
const LINK_DOMAIN = utf8('pawpost/v1/device-link');
const LINK_MODULUS = 10n ** BigInt(LINK_CODE_DIGITS);

/**
 * What a certificate signs: `"pawpost/v1/device-certificate" || account id (16) ||
 * certifier device id (16) || certified device's public identity (81)`.
 * @param {Uint8Array} accountId 16 bytes
 * @param {Uint8Array} certifierId 16 bytes
 * @param {Uint8Array} identityBytes the certified device's encoded public identity (81)
 * @returns {Uint8Array}
 */
export function certificateInput(accountId, certifierId, identityBytes) {
  return concat(
    CERTIFICATE_DOMAIN,
    expectLength(accountId, ID_LEN, 'accountId'),
    expectLength(certifierId, ID_LEN, 'certifierId'),
    expectLength(identityBytes, PUBLIC_IDENTITY_LEN, 'identityBytes'),
  );
}

/**
 * Certifies a device of the same account with this device's key (the certifier is
 * `keys.deviceId`).
 * @param {import('./recovery.js').SigningKeys} keys
 * @param {Uint8Array} accountId 16 bytes
 * @param {Uint8Array} identityBytes the new device's encoded public identity (81)
 * @returns {Promise<Uint8Array>} the 64-byte signature
 */
export function signCertificate(keys, accountId, identityBytes) {
  const input = certificateInput(accountId, keys.deviceId, identityBytes);
  return ed25519Sign(keys.ed25519Private, input);
}

/**
 * Checks a certificate strictly (as every signature in this format).
 * @param {{
 *   certifierEd25519Pub: Uint8Array,
 *   accountId: Uint8Array,
 *   certifierId: Uint8Array,
 *   identityBytes: Uint8Array,
 *   signature: Uint8Array,
 * }} certificate
 * @returns {Promise<boolean>}
 */
export function verifyCertificate(certificate) {
  const input = certificateInput(
    certificate.accountId,
    certificate.certifierId,
    certificate.identityBytes,
  );
  return verifyStrict(certificate.certifierEd25519Pub, input, certificate.signature);
}

/**
 * The code a new device shows so that an existing device of the account can find and
 * certify it: `d = SHA-256("pawpost/v1/device-link" || public identity)`, the big-endian
 * integer of `d[0..8]` modulo 10^16, zero-padded to 16 digits, 4 groups of 4.
 * @param {Uint8Array} identityBytes encoded public identity (81)
 * @returns {Promise<string>} for example `0412 9931 5520 7781`
 */
export async function linkCode(identityBytes) {
  const d = await sha256(
    concat(LINK_DOMAIN, expectLength(identityBytes, PUBLIC_IDENTITY_LEN, 'identityBytes')),
  );
  let value = 0n;
  for (const b of d.subarray(0, 8)) value = (value << 8n) | BigInt(b);
  const digits = String(value % LINK_MODULUS).padStart(LINK_CODE_DIGITS, '0');
  return digits.match(/.{4}/g)?.join(' ') ?? digits;
}
