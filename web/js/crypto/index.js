/**
 * pawpost end-to-end encryption in the browser: the byte formats of docs/ENVELOPE.md on
 * WebCrypto. Import from here; the other modules are its parts.
 */
export { PawpostCryptoError } from './errors.js';
export { fromHex, toHex } from './bytes.js';
export {
  DEVICE_SECRET_LEN,
  ID_LEN,
  PUBLIC_IDENTITY_LEN,
  decodeDeviceSecret,
  decodePublicIdentity,
  deviceKeysFromSecret,
  encodeDeviceSecret,
  encodePublicIdentity,
  fingerprint,
  generateDeviceKeys,
  safetyNumber,
} from './identity.js';
export {
  CHUNK_SIZE,
  HEADER_FIXED_LEN,
  MAX_CHUNK_COUNT,
  MAX_PAYLOAD_LEN,
  MAX_RECIPIENTS,
  MediaType,
  PAYLOAD_DIGEST_LEN,
  SIGNATURE_LEN,
  TAG_LEN,
  WRAPPED_KEY_LEN,
  chunkCount,
  ciphertextLen,
  encodeHeader,
  openEnvelope,
  parseEnvelope,
  parseEnvelopePrefix,
  parseHeader,
  sealEnvelope,
  verifySender,
  verifySenderInRoster,
} from './envelope.js';
export {
  MAX_MEMBERS,
  MAX_RETENTION_DAYS,
  MAX_TIMEZONE_OFFSET_MINUTES,
  MEMBER_LEN,
  MINUTES_PER_DAY,
  MIN_TIMEZONE_OFFSET_MINUTES,
  ROSTER_FIXED_LEN,
  ROSTER_SIGNATURE_LEN,
  decodeRoster,
  decodeSignedRoster,
  encodeRoster,
  encodeSignedRoster,
  genesisRoster,
  maySignRosters,
  nextRosterVersion,
  rosterDigest,
  signRoster,
  verifyGenesis,
  verifySignedBy,
  verifySuccessor,
} from './roster.js';
export {
  RECOVERY_CODE_CHARS,
  RECOVERY_CODE_GROUP,
  RECOVERY_CODE_LEN,
  formatRecoveryCode,
  generateRecoveryCode,
  parseRecoveryCode,
  recoveryDeviceId,
  recoveryMember,
  recoverySeed,
  recoverySigner,
} from './recovery.js';
export {
  CERTIFICATE_SIGNATURE_LEN,
  LINK_CODE_DIGITS,
  certificateInput,
  linkCode,
  signCertificate,
  verifyCertificate,
} from './certificate.js';
export { indexedDbKeyStore, loadOrCreateDeviceKeys, memoryKeyStore } from './keystore.js';
