/**
 * The household's signed roster as this browser sees it: fetched, checked and pinned, and
 * rebuilt (then signed by this owner device) whenever members, roles, blocks, toys or
 * settings change.
 */
import { api, ApiError } from './api.js';
import {
  decodeSignedRoster,
  encodeRoster,
  encodeSignedRoster,
  genesisRoster,
  MAX_TIMEZONE_OFFSET_MINUTES,
  MIN_TIMEZONE_OFFSET_MINUTES,
  nextRosterVersion,
  signRoster,
  verifyGenesis,
  PawpostCryptoError,
  verifyCertificate,
  verifySuccessor,
  decodePublicIdentity,
} from './crypto/index.js';
import { bytesUuid, fromB64url, sameBytes, toB64url, uuidBytes } from './util.js';
import { t } from './i18n.js';

/** @typedef {import('./crypto/roster.js').SignedRoster} SignedRoster */
/** @typedef {import('./crypto/roster.js').Roster} Roster */
/** @typedef {import('./crypto/roster.js').Member} Member */
/** @typedef {import('./crypto/roster.js').HouseholdSettings} HouseholdSettings */

/** @returns {HouseholdSettings} */
export function defaultSettings() {
  const offset = -new Date().getTimezoneOffset();
  return {
    quietHours: null,
    timezoneOffsetMinutes: Math.min(MAX_TIMEZONE_OFFSET_MINUTES, Math.max(MIN_TIMEZONE_OFFSET_MINUTES, offset)),
    parentApprovesBeforePlay: false,
    retentionDays: 30,
  };
}

/** @param {string} householdId */
const pinKey = (householdId) => `pawpost.roster.${householdId}`;

/** Most roster versions asked for at once while checking the chain (the server's page). */
const ROSTER_PAGE = 200;

/**
 * The roster versions after `after`, in order, as the server keeps them.
 * @param {string} householdId
 * @param {bigint} after
 * @returns {Promise<SignedRoster[]>}
 */
async function rostersAfter(householdId, after) {
  /** @type {SignedRoster[]} */
  const out = [];
  let from = after;
  for (;;) {
    /** @type {{ version: number, signed_roster: string }[]} */
    const page = await api('GET', `/api/v1/households/${householdId}/rosters?after=${from}`);
    for (const v of page) out.push(decodeSignedRoster(fromB64url(v.signed_roster)));
    if (page.length < ROSTER_PAGE) return out;
    from = out[out.length - 1].roster.version;
  }
}

/**
 * Accepts a roster. Version 1 must be a valid genesis, and every later version must
 * follow from the one before it, signed by an approved owner (or the household's recovery
 * key) of that one. A browser that pinned a version checks each version after it; a
 * browser that pinned none (new, or its site data was cleared) checks the whole chain
 * from version 1, which the server keeps. The pinned version must come back unchanged,
 * and an older one is a rollback.
 * @param {string} householdId
 * @param {SignedRoster} signed
 */
async function checkRoster(householdId, signed) {
  if (!sameBytes(signed.roster.householdId, uuidBytes(householdId))) {
    throw new Error(t('The household keys belong to another household.'));
  }
  const pinnedText = localStorage.getItem(pinKey(householdId));
  const pinned = pinnedText ? decodeSignedRoster(fromB64url(pinnedText)) : null;
  if (pinned) {
    if (signed.roster.version < pinned.roster.version) {
      throw new Error(t('The server sent older household keys than this browser has seen.'));
    }
    if (signed.roster.version === pinned.roster.version) {
      if (!sameBytes(signed.rosterBytes, pinned.rosterBytes)) {
        throw new Error(t('The server sent different household keys for the same version.'));
      }
      return;
    }
  }
  if (signed.roster.version === 1n) {
    await verifyGenesis(signed);
  } else if (pinned && pinned.roster.version + 1n === signed.roster.version) {
    await verifySuccessor(signed, pinned);
  } else {
    // Check every version from the pinned one (or the first) up to this one.
    const chain = await rostersAfter(householdId, pinned ? pinned.roster.version : 0n);
    let prev = pinned;
    for (const next of chain) {
      if (next.roster.version > signed.roster.version) break;
      if (prev) await verifySuccessor(next, prev);
      else await verifyGenesis(next);
      prev = next;
    }
    if (!prev || !sameBytes(prev.rosterBytes, signed.rosterBytes) || !sameBytes(prev.signer, signed.signer)) {
      throw new Error(t('The server did not send every version of the household keys.'));
    }
  }
  localStorage.setItem(pinKey(householdId), toB64url(encodeSignedRoster(signed)));
}

/**
 * The household's current roster, checked, or null if none was published yet.
 * @param {string} householdId
 * @returns {Promise<SignedRoster | null>}
 */
export async function loadRoster(householdId) {
  let view;
  try {
    view = await api('GET', `/api/v1/households/${householdId}/roster`);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'no_roster') return null;
    throw e;
  }
  const signed = decodeSignedRoster(fromB64url(view.signed_roster));
  await checkRoster(householdId, signed);
  return signed;
}

/**
 * A device as the server lists it.
 * @typedef {{
 *   device_id: string,
 *   kind: string,
 *   account_id: string | null,
 *   identity: string,
 *   fingerprint?: string,
 *   label?: string,
 *   certificate?: { certifier_device_id: string, signature: string } | null,
 * }} ListedDevice
 */

/**
 * What a roster update should do besides following the server's member list.
 * @typedef {{
 *   settings?: HouseholdSettings,
 *   approveDevices?: string[],
 *   removeDevices?: string[],
 *   recovery?: Member | null,
 *   signer?: import('./crypto/recovery.js').SigningKeys,
 * }} RosterChange
 */

/**
 * Whether a listed device's certificate was signed by `certifier`, a device of the same
 * account that the roster already trusts (its key is taken from the roster, never from
 * the server).
 * @param {ListedDevice} d
 * @param {Member} certifier
 */
async function certifiedBy(d, certifier) {
  if (!d.certificate || !d.account_id) return false;
  return verifyCertificate({
    certifierEd25519Pub: certifier.ed25519Pub,
    accountId: uuidBytes(d.account_id),
    certifierId: certifier.deviceId,
    identityBytes: fromB64url(d.identity),
    signature: fromB64url(d.certificate.signature),
  }).catch(() => false);
}

/**
 * The members a roster should list now, and the devices that wait to be vouched for.
 *
 * - Toys the server lists (paired through this household's code and the toy's paw).
 * - A person's device already in the roster keeps its keys (the server cannot swap them),
 *   with the role and status the person has now.
 * - A new device of an approved person enters only if an earlier device of theirs in the
 *   roster certified it, or a parent approved it here after seeing its fingerprint
 *   (`change.approveDevices`), or it is the signing device itself. The server's list
 *   alone is never enough: a device it lists without either stays out.
 * - Devices of blocked people are kept as blocked, so that toys refuse them.
 * - The household's recovery signer stays unless `change.recovery` replaces it.
 * @param {string} householdId
 * @param {SignedRoster | null} current
 * @param {RosterChange} change
 * @param {Uint8Array} signerId
 * @returns {Promise<{ members: Member[], waiting: ListedDevice[] }>}
 */
async function wantedMembers(householdId, current, change, signerId) {
  /** @type {{ account_id: string, role: string, status: string }[]} */
  const people = await api('GET', `/api/v1/households/${householdId}/members`);
  /** @type {ListedDevice[]} */
  const devices = await api('GET', `/api/v1/households/${householdId}/devices`);
  const householdBytes = uuidBytes(householdId);
  const approve = new Set(change.approveDevices ?? []);
  const remove = new Set(change.removeDevices ?? []);
  const inRoster = (/** @type {Uint8Array} */ id) => current?.roster.members.find((m) => sameBytes(m.deviceId, id));
  /** @type {Member[]} */
  const out = [];
  /** @type {ListedDevice[]} */
  let undecided = [];
  for (const d of devices) {
    if (remove.has(d.device_id)) continue;
    const identity = decodePublicIdentity(fromB64url(d.identity));
    if (d.kind === 'toy') {
      out.push({ deviceId: identity.deviceId, accountId: householdBytes, role: 'toy', status: 'approved', x25519Pub: identity.x25519Pub, ed25519Pub: identity.ed25519Pub });
      continue;
    }
    const person = people.find((m) => m.account_id === d.account_id);
    if (!person || person.status === 'pending' || !d.account_id) continue;
    const status = person.status === 'blocked' ? 'blocked' : 'approved';
    const role = /** @type {any} */ (person.role);
    const known = inRoster(identity.deviceId);
    if (known && known.role !== 'toy' && known.role !== 'recovery' && sameBytes(known.accountId, uuidBytes(d.account_id))) {
      out.push({ ...known, role, status });
      continue;
    }
    if (known) continue; // The id is the toy's or another person's in the roster: never reuse it.
    const member = { deviceId: identity.deviceId, accountId: uuidBytes(d.account_id), role, status, x25519Pub: identity.x25519Pub, ed25519Pub: identity.ed25519Pub };
    if (status === 'blocked' || approve.has(d.device_id) || sameBytes(identity.deviceId, signerId)) {
      out.push(/** @type {Member} */ (member));
    } else {
      undecided.push(d);
    }
  }
  // Certificates: a device vouched for by a trusted device of the same person enters, and
  // may then vouch for the next one.
  for (let grew = true; grew; ) {
    grew = false;
    /** @type {ListedDevice[]} */
    const still = [];
    for (const d of undecided) {
      const certifier = d.certificate && out.find((m) => m.status === 'approved' && bytesUuid(m.deviceId) === d.certificate?.certifier_device_id);
      if (certifier && d.account_id && sameBytes(certifier.accountId, uuidBytes(d.account_id)) && (await certifiedBy(d, certifier))) {
        const identity = decodePublicIdentity(fromB64url(d.identity));
        const person = people.find((m) => m.account_id === d.account_id);
        out.push({ deviceId: identity.deviceId, accountId: uuidBytes(d.account_id), role: /** @type {any} */ (person?.role), status: 'approved', x25519Pub: identity.x25519Pub, ed25519Pub: identity.ed25519Pub });
        grew = true;
      } else {
        still.push(d);
      }
    }
    undecided = still;
  }
  for (const m of current?.roster.members ?? []) {
    if (out.some((o) => sameBytes(o.deviceId, m.deviceId)) || m.role === 'toy' || remove.has(bytesUuid(m.deviceId))) continue;
    if (m.role === 'recovery') {
      if (change.recovery === undefined) out.push(m);
      continue;
    }
    const person = people.find((x) => x.account_id === bytesUuid(m.accountId));
    if (person && person.status === 'blocked') out.push({ ...m, status: 'blocked' });
  }
  if (change.recovery) out.push(change.recovery);
  return { members: out, waiting: undecided };
}

/**
 * Whether a device may sign the roster that follows `current`: an approved owner of it
 * (or, for a household's first roster, any owner).
 * @param {SignedRoster | null} current
 * @param {Uint8Array} deviceId
 */
export function maySignRoster(current, deviceId) {
  if (!current) return true;
  return current.roster.members.some((m) => sameBytes(m.deviceId, deviceId) && m.status === 'approved' && (m.role === 'owner' || m.role === 'recovery'));
}

/**
 * Publishes a new roster version if what it should say differs from the current one.
 * Only an owner's device (or the household's recovery key, `change.signer`) can sign.
 * Returns the roster now in force, whether it changed, and the devices of approved people
 * that no trusted device vouched for yet.
 * @param {string} householdId
 * @param {import('./crypto/identity.js').DeviceKeys} keys this owner device
 * @param {RosterChange} [change]
 * @returns {Promise<{ signed: SignedRoster, changed: boolean, waiting: ListedDevice[] }>}
 */
export async function syncRoster(householdId, keys, change = {}) {
  const signer = change.signer ?? keys;
  for (let attempt = 0; ; attempt++) {
    const current = await loadRoster(householdId);
    const { members, waiting } = await wantedMembers(householdId, current, change, keys.deviceId);
    const settings = change.settings ?? current?.roster.settings ?? defaultSettings();
    /** @type {Roster} */
    let next;
    if (current) {
      next = await nextRosterVersion(current.roster);
      next.settings = { ...settings };
      next.members = members;
      const same = encodeRoster({ ...next, version: current.roster.version, previousDigest: current.roster.previousDigest });
      if (sameBytes(same, current.rosterBytes)) return { signed: current, changed: false, waiting };
    } else {
      next = genesisRoster(uuidBytes(householdId), settings, members);
    }
    const signed = await signRoster(next, signer);
    try {
      await api('POST', `/api/v1/households/${householdId}/roster`, {
        signed_roster: toB64url(encodeSignedRoster(signed)),
      });
      localStorage.setItem(pinKey(householdId), toB64url(encodeSignedRoster(signed)));
      return { signed, changed: true, waiting };
    } catch (e) {
      if (attempt < 2 && e instanceof ApiError && e.code === 'roster_version_taken') continue;
      throw e;
    }
  }
}

/**
 * What went wrong while updating the household keys, in plain words with what to do;
 * anything else keeps its own message.
 * @param {unknown} e
 * @returns {string}
 */
export function keysProblem(e) {
  if (e instanceof ApiError && ['roster_refused', 'roster_version_taken', 'not_your_device'].includes(e.code ?? '')) {
    return t("The household keys could not be updated: another parent's device may have changed them at the same moment. Reload the page and try again.");
  }
  if (e instanceof PawpostCryptoError) {
    return t("The household keys the server sent do not check out, so this browser did not change them. Try again later; if it stays like this, tell the household's other parent.");
  }
  return e instanceof Error ? e.message : String(e);
}

/**
 * The identities of a roster's approved members: who a message is sealed for.
 * @param {Roster} roster
 * @returns {import('./crypto/identity.js').PublicIdentity[]}
 */
export function approvedIdentities(roster) {
  return roster.members
    .filter((m) => m.status === 'approved' && m.role !== 'recovery')
    .map((m) => ({ deviceId: m.deviceId, x25519Pub: m.x25519Pub, ed25519Pub: m.ed25519Pub }));
}
