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
  verifySignedBy,
  verifySuccessor,
  decodePublicIdentity,
} from './crypto/index.js';
import { bytesUuid, fromB64url, sameBytes, toB64url, uuidBytes } from './util.js';

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

/**
 * Accepts a roster: version 1 must be a valid genesis; the version right after the pinned
 * one must be its successor; the pinned version must come back unchanged; an older one is
 * a rollback. A version further ahead must at least be signed by an approved owner it lists.
 * @param {string} householdId
 * @param {SignedRoster} signed
 */
async function checkRoster(householdId, signed) {
  if (!sameBytes(signed.roster.householdId, uuidBytes(householdId))) {
    throw new Error('The household keys belong to another household.');
  }
  const pinnedText = localStorage.getItem(pinKey(householdId));
  const pinned = pinnedText ? decodeSignedRoster(fromB64url(pinnedText)) : null;
  if (signed.roster.version === 1n) {
    await verifyGenesis(signed);
  } else if (pinned && pinned.roster.version + 1n === signed.roster.version) {
    await verifySuccessor(signed, pinned);
  } else {
    const signer = signed.roster.members.find((m) => sameBytes(m.deviceId, signed.signer));
    if (!signer || signer.role !== 'owner' || signer.status !== 'approved') {
      throw new Error('The household keys are not signed by a parent.');
    }
    await verifySignedBy(signed, signer.ed25519Pub);
  }
  if (pinned) {
    if (signed.roster.version < pinned.roster.version) {
      throw new Error('The server sent older household keys than this browser has seen.');
    }
    if (signed.roster.version === pinned.roster.version && !sameBytes(signed.rosterBytes, pinned.rosterBytes)) {
      throw new Error('The server sent different household keys for the same version.');
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
 * The members a roster should list now: every registered device of an approved member
 * (with that member's role), every toy, and the devices of blocked members, kept as
 * blocked so that toys refuse them.
 * @param {string} householdId
 * @param {SignedRoster | null} current
 * @returns {Promise<Member[]>}
 */
async function wantedMembers(householdId, current) {
  /** @type {{ account_id: string, role: string, status: string }[]} */
  const members = await api('GET', `/api/v1/households/${householdId}/members`);
  /** @type {{ device_id: string, kind: string, account_id: string | null, identity: string }[]} */
  const devices = await api('GET', `/api/v1/households/${householdId}/devices`);
  const householdBytes = uuidBytes(householdId);
  /** @type {Member[]} */
  const out = [];
  for (const d of devices) {
    const identity = decodePublicIdentity(fromB64url(d.identity));
    if (d.kind === 'toy') {
      out.push({
        deviceId: identity.deviceId,
        accountId: householdBytes,
        role: 'toy',
        status: 'approved',
        x25519Pub: identity.x25519Pub,
        ed25519Pub: identity.ed25519Pub,
      });
      continue;
    }
    const member = members.find((m) => m.account_id === d.account_id);
    if (!member || member.status === 'pending' || !d.account_id) continue;
    out.push({
      deviceId: identity.deviceId,
      accountId: uuidBytes(d.account_id),
      role: /** @type {any} */ (member.role),
      status: member.status === 'blocked' ? 'blocked' : 'approved',
      x25519Pub: identity.x25519Pub,
      ed25519Pub: identity.ed25519Pub,
    });
  }
  for (const m of current?.roster.members ?? []) {
    if (out.some((o) => sameBytes(o.deviceId, m.deviceId)) || m.role === 'toy') continue;
    const member = members.find((x) => x.account_id === bytesUuid(m.accountId));
    if (member && member.status === 'blocked') out.push({ ...m, status: 'blocked' });
  }
  return out;
}

/**
 * Publishes a new roster version if what it should say differs from the current one.
 * Only an owner's device can sign. Returns the roster now in force and whether it changed.
 * @param {string} householdId
 * @param {import('./crypto/identity.js').DeviceKeys} keys this owner device
 * @param {{ settings?: HouseholdSettings }} [change]
 * @returns {Promise<{ signed: SignedRoster, changed: boolean }>}
 */
export async function syncRoster(householdId, keys, change = {}) {
  for (let attempt = 0; ; attempt++) {
    const current = await loadRoster(householdId);
    const members = await wantedMembers(householdId, current);
    const settings = change.settings ?? current?.roster.settings ?? defaultSettings();
    /** @type {Roster} */
    let next;
    if (current) {
      next = await nextRosterVersion(current.roster);
      next.settings = { ...settings };
      next.members = members;
      const same = encodeRoster({ ...next, version: current.roster.version, previousDigest: current.roster.previousDigest });
      if (sameBytes(same, current.rosterBytes)) return { signed: current, changed: false };
    } else {
      next = genesisRoster(uuidBytes(householdId), settings, members);
    }
    const signed = await signRoster(next, keys);
    try {
      await api('POST', `/api/v1/households/${householdId}/roster`, {
        signed_roster: toB64url(encodeSignedRoster(signed)),
      });
      localStorage.setItem(pinKey(householdId), toB64url(encodeSignedRoster(signed)));
      return { signed, changed: true };
    } catch (e) {
      if (attempt < 2 && e instanceof ApiError && e.code === 'roster_version_taken') continue;
      throw e;
    }
  }
}

/**
 * The identities of a roster's approved members: who a message is sealed for.
 * @param {Roster} roster
 * @returns {import('./crypto/identity.js').PublicIdentity[]}
 */
export function approvedIdentities(roster) {
  return roster.members
    .filter((m) => m.status === 'approved')
    .map((m) => ({ deviceId: m.deviceId, x25519Pub: m.x25519Pub, ed25519Pub: m.ed25519Pub }));
}
