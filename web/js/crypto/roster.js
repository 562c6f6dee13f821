/**
 * The household roster: members, their keys and roles, and the household's settings, as a
 * chain of versions each signed by an owner device (docs/ENVELOPE.md, "Roster").
 */
import {
  bytesEqual,
  compareBytes,
  concat,
  expectLength,
  FORMAT_VERSION,
  Reader,
  utf8,
  Writer,
} from './bytes.js';
import { verifyStrict } from './ed25519.js';
import { fail } from './errors.js';
import { ID_LEN, readKeys } from './identity.js';
import { ed25519Sign, sha256 } from './primitives.js';

/** Most members a roster may list. */
export const MAX_MEMBERS = 64;
/** Longest retention a household may choose, in days. */
export const MAX_RETENTION_DAYS = 365;
/** Quiet-hour bounds are below this many minutes. */
export const MINUTES_PER_DAY = 1440;
/** Westernmost UTC offset in minutes (UTC-12:00). */
export const MIN_TIMEZONE_OFFSET_MINUTES = -720;
/** Easternmost UTC offset in minutes (UTC+14:00). */
export const MAX_TIMEZONE_OFFSET_MINUTES = 840;
/** Length of an encoded member. */
export const MEMBER_LEN = 98;
/** Length of a roster body before its members. */
export const ROSTER_FIXED_LEN = 69;
/** Length of the Ed25519 signature on a roster. */
export const ROSTER_SIGNATURE_LEN = 64;

const DIGEST_DOMAIN = utf8('pawpost/v1/roster-digest');
const SIGNATURE_DOMAIN = utf8('pawpost/v1/roster-signature');

/**
 * `recovery` is the household's recovery key: it may sign roster versions (not the first),
 * never sends, reads or approves, and its X25519 key is 32 zeros.
 * @typedef {'owner' | 'guardian' | 'family' | 'toy' | 'recovery'} Role
 */
/** @typedef {'approved' | 'blocked'} MemberStatus */

/** Wire values of roles and statuses; names as in the test vectors. */
const ROLES = /** @type {const} */ (['owner', 'guardian', 'family', 'toy', 'recovery']);
const STATUSES = /** @type {const} */ (['approved', 'blocked']);

/**
 * @typedef {{
 *   deviceId: Uint8Array,
 *   accountId: Uint8Array,
 *   role: Role,
 *   status: MemberStatus,
 *   x25519Pub: Uint8Array,
 *   ed25519Pub: Uint8Array,
 * }} Member
 */

/**
 * A window with end before start runs over midnight.
 * @typedef {{ startMinute: number, endMinute: number }} QuietHours
 */

/**
 * @typedef {{
 *   quietHours: QuietHours | null,
 *   timezoneOffsetMinutes: number,
 *   parentApprovesBeforePlay: boolean,
 *   retentionDays: number,
 * }} HouseholdSettings
 */

/**
 * One version of a household's roster. `version` is a u64, hence a bigint.
 * @typedef {{
 *   householdId: Uint8Array,
 *   version: bigint,
 *   previousDigest: Uint8Array,
 *   settings: HouseholdSettings,
 *   members: Member[],
 * }} Roster
 */

/**
 * A roster with the device id and signature of the owner device that signed it. Decoding
 * checks structure only: verify it with {@link verifyGenesis}, {@link verifySuccessor} or
 * {@link verifySignedBy} before trusting its contents.
 * @typedef {{
 *   roster: Roster,
 *   rosterBytes: Uint8Array,
 *   signer: Uint8Array,
 *   signature: Uint8Array,
 * }} SignedRoster
 */

/**
 * The first roster of a household.
 * @param {Uint8Array} householdId
 * @param {HouseholdSettings} settings
 * @param {Member[]} members
 * @returns {Roster}
 */
export function genesisRoster(householdId, settings, members) {
  return { householdId, version: 1n, previousDigest: new Uint8Array(32), settings, members };
}

/**
 * A copy to edit into the next version: version + 1, chained to this one's digest.
 * @param {Roster} roster
 * @returns {Promise<Roster>}
 */
export async function nextRosterVersion(roster) {
  return {
    ...roster,
    version: roster.version + 1n,
    previousDigest: await rosterDigest(encodeRoster(roster)),
    settings: { ...roster.settings },
    members: roster.members.map((m) => ({ ...m })),
  };
}

/**
 * Canonical encoding, members sorted by device id. Values that would not decode (settings
 * out of range, duplicate members) still encode; {@link signRoster} refuses them.
 * @param {Roster} roster
 * @returns {Uint8Array}
 */
export function encodeRoster(roster) {
  const s = roster.settings;
  const q = s.quietHours ?? { startMinute: 0, endMinute: 0 };
  const members = [...roster.members].sort((a, b) => compareBytes(a.deviceId, b.deviceId));
  const w = new Writer()
    .u8(FORMAT_VERSION)
    .bytes(expectLength(roster.householdId, ID_LEN, 'householdId'))
    .u64(roster.version)
    .bytes(expectLength(roster.previousDigest, 32, 'previousDigest'))
    // Absent quiet hours encode as zeros so that each value has one encoding.
    .bool(s.quietHours !== null)
    .u16(q.startMinute)
    .u16(q.endMinute)
    .i16(s.timezoneOffsetMinutes)
    .bool(s.parentApprovesBeforePlay)
    .u16(s.retentionDays)
    .u16(members.length);
  for (const m of members) {
    const role = ROLES.indexOf(m.role);
    const status = STATUSES.indexOf(m.status);
    if (role < 0 || status < 0)
      throw new RangeError(`unknown role or status ${m.role}/${m.status}`);
    w.bytes(expectLength(m.deviceId, ID_LEN, 'member deviceId'))
      .bytes(expectLength(m.accountId, ID_LEN, 'member accountId'))
      .u8(role + 1)
      .u8(status + 1)
      // A recovery key receives nothing: its X25519 key is always written as zeros.
      .bytes(
        m.role === 'recovery'
          ? new Uint8Array(32)
          : expectLength(m.x25519Pub, 32, 'member x25519Pub'),
      )
      .bytes(expectLength(m.ed25519Pub, 32, 'member ed25519Pub'));
  }
  return w.finish();
}

/**
 * @param {Reader} r
 * @returns {HouseholdSettings}
 */
function readSettings(r) {
  const present = r.bool();
  const startMinute = r.u16();
  const endMinute = r.u16();
  const timezoneOffsetMinutes = r.i16();
  const parentApprovesBeforePlay = r.bool();
  const retentionDays = r.u16();
  const quietOk = present
    ? startMinute < MINUTES_PER_DAY && endMinute < MINUTES_PER_DAY && startMinute !== endMinute
    : startMinute === 0 && endMinute === 0;
  if (
    !quietOk ||
    timezoneOffsetMinutes < MIN_TIMEZONE_OFFSET_MINUTES ||
    timezoneOffsetMinutes > MAX_TIMEZONE_OFFSET_MINUTES ||
    retentionDays < 1 ||
    retentionDays > MAX_RETENTION_DAYS
  ) {
    fail('invalid_settings', 'household settings out of range');
  }
  return {
    quietHours: present ? { startMinute, endMinute } : null,
    timezoneOffsetMinutes,
    parentApprovesBeforePlay,
    retentionDays,
  };
}

/**
 * @param {Reader} r
 * @returns {Member}
 */
function readMember(r) {
  const deviceId = r.copy(ID_LEN);
  const accountId = r.copy(ID_LEN);
  const role = ROLES[r.u8() - 1];
  if (role === undefined) fail('unknown_role', 'unknown member role');
  const status = STATUSES[r.u8() - 1];
  if (status === undefined) fail('unknown_status', 'unknown member status');
  const { x25519Pub, ed25519Pub } = readKeys(r, deviceId);
  // A recovery key receives nothing: its X25519 key has the one encoding of 32 zeros.
  if (role === 'recovery' && !x25519Pub.every((b) => b === 0)) {
    fail('invalid_key', 'a recovery member has an encryption key');
  }
  return { deviceId, accountId, role, status, x25519Pub, ed25519Pub };
}

/**
 * @param {Reader} r
 * @returns {Roster}
 */
function readRoster(r) {
  r.version();
  const householdId = r.copy(ID_LEN);
  const version = r.u64();
  const previousDigest = r.copy(32);
  // Version 1 starts a chain and points nowhere; every later version points back.
  const zero = previousDigest.every((b) => b === 0);
  if (version === 0n || (version === 1n) !== zero) {
    fail('invalid_roster_version', 'roster version and previous digest are inconsistent');
  }
  const settings = readSettings(r);
  const count = r.u16();
  if (count === 0) fail('no_members', 'roster has no member');
  if (count > MAX_MEMBERS) fail('too_many_members', 'too many roster members');
  /** @type {Member[]} */
  const members = [];
  for (let i = 0; i < count; i++) {
    const member = readMember(r);
    const last = members[members.length - 1];
    if (last && compareBytes(last.deviceId, member.deviceId) >= 0) {
      fail('members_not_sorted', 'roster members are not sorted by device id or are duplicated');
    }
    members.push(member);
  }
  return { householdId, version, previousDigest, settings, members };
}

/**
 * Strict decode of a roster body.
 * @param {Uint8Array} bytes
 * @returns {Roster}
 */
export function decodeRoster(bytes) {
  const r = new Reader(bytes);
  const roster = readRoster(r);
  r.finish();
  return roster;
}

/**
 * `SHA-256("pawpost/v1/roster-digest" || roster body)`: what the next version chains to.
 * @param {Uint8Array} rosterBytes an encoded roster body
 * @returns {Promise<Uint8Array>}
 */
export function rosterDigest(rosterBytes) {
  return sha256(concat(DIGEST_DOMAIN, rosterBytes));
}

/**
 * Signs a roster with an owner device's key or the recovery key. Fails with the decode
 * error if the roster would not decode (a setting out of range, a duplicate member, too
 * many members...).
 * @param {Roster} roster
 * @param {import('./recovery.js').SigningKeys} signer device keys, or a recovery signer's `keys`
 * @returns {Promise<SignedRoster>}
 */
export async function signRoster(roster, signer) {
  const rosterBytes = encodeRoster(roster);
  const decoded = decodeRoster(rosterBytes);
  const signature = await ed25519Sign(signer.ed25519Private, concat(SIGNATURE_DOMAIN, rosterBytes));
  return { roster: decoded, rosterBytes, signer: signer.deviceId.slice(), signature };
}

/**
 * `roster body || signer device id (16) || signature (64)`.
 * @param {SignedRoster} signed
 * @returns {Uint8Array}
 */
export function encodeSignedRoster(signed) {
  return concat(signed.rosterBytes, signed.signer, signed.signature);
}

/**
 * Strict decode of {@link encodeSignedRoster}'s output. Does not verify the signature.
 * @param {Uint8Array} bytes
 * @returns {SignedRoster}
 */
export function decodeSignedRoster(bytes) {
  const r = new Reader(bytes);
  const roster = readRoster(r);
  const rosterBytes = bytes.slice(0, r.offset);
  const signer = r.copy(ID_LEN);
  const signature = r.copy(ROSTER_SIGNATURE_LEN);
  r.finish();
  return { roster, rosterBytes, signer, signature };
}

/**
 * Accepts a roster signed with a pinned owner key, as a toy does after pairing.
 * @param {SignedRoster} signed
 * @param {Uint8Array} ed25519Pub
 * @returns {Promise<Roster>}
 */
export async function verifySignedBy(signed, ed25519Pub) {
  const input = concat(SIGNATURE_DOMAIN, signed.rosterBytes);
  if (!(await verifyStrict(ed25519Pub, input, signed.signature))) {
    fail('bad_signature', 'roster signature does not verify');
  }
  return signed.roster;
}

/**
 * Whether a member may sign the next roster: approved, and an owner or the recovery key.
 * @param {Member} member
 * @returns {boolean}
 */
export function maySignRosters(member) {
  return member.status === 'approved' && (member.role === 'owner' || member.role === 'recovery');
}

/**
 * The signer must be an approved member of `authority` that `allowed` accepts, and its key
 * there must verify.
 * @param {SignedRoster} signed
 * @param {Roster} authority
 * @param {(m: Member) => boolean} allowed
 * @returns {Promise<Roster>}
 */
function verifySignerIn(signed, authority, allowed) {
  const signer = authority.members.find((m) => bytesEqual(m.deviceId, signed.signer));
  if (!signer || !allowed(signer)) {
    fail('signer_not_owner', 'roster was not signed by an approved owner');
  }
  return verifySignedBy(signed, signer.ed25519Pub);
}

/**
 * Accepts a household's first roster: version 1 (`not_genesis`), signed by a device that is
 * an approved owner in this same roster (`signer_not_owner`), with its key (`bad_signature`).
 * @param {SignedRoster} signed
 * @returns {Promise<Roster>}
 */
export async function verifyGenesis(signed) {
  if (signed.roster.version !== 1n) fail('not_genesis', 'not a first roster (version 1)');
  return verifySignerIn(
    signed,
    signed.roster,
    (m) => m.role === 'owner' && m.status === 'approved',
  );
}

/**
 * Accepts the next roster after `prev`, which the caller already trusts, checking in order:
 * same household (`household_mismatch`), higher version (`stale_version`), chained to
 * `prev`'s digest (`previous_digest_mismatch`), signed by an approved owner or recovery key
 * of `prev` (`signer_not_owner`) with that member's key (`bad_signature`).
 * @param {SignedRoster} signed
 * @param {SignedRoster} prev
 * @returns {Promise<Roster>}
 */
export async function verifySuccessor(signed, prev) {
  if (!bytesEqual(signed.roster.householdId, prev.roster.householdId)) {
    fail('household_mismatch', 'roster belongs to another household');
  }
  if (signed.roster.version <= prev.roster.version) {
    fail('stale_version', 'roster version is not newer than the current one');
  }
  if (!bytesEqual(signed.roster.previousDigest, await rosterDigest(prev.rosterBytes))) {
    fail('previous_digest_mismatch', 'roster does not follow the current one');
  }
  return verifySignerIn(signed, prev.roster, maySignRosters);
}
