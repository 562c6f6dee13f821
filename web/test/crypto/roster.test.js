import assert from 'node:assert/strict';
import { test } from 'node:test';

import { toHex } from '../../js/crypto/bytes.js';
import {
  decodeRoster,
  decodeSignedRoster,
  encodeRoster,
  encodeSignedRoster,
  genesisRoster,
  MAX_MEMBERS,
  MAX_RETENTION_DAYS,
  MEMBER_LEN,
  nextRosterVersion,
  rosterDigest,
  signRoster,
  verifyGenesis,
  verifySignedBy,
  verifySuccessor,
} from '../../js/crypto/roster.js';
import { deviceFrom, fromHex, rejectsWith, vectorFile } from './helpers.js';

const file = vectorFile('roster-v1.json');

/**
 * A roster from its JSON description in the vector file.
 * @param {any} v
 * @returns {import('../../js/crypto/roster.js').Roster}
 */
function rosterFromJson(v) {
  const q = v.settings.quiet_hours;
  return {
    householdId: fromHex(v.household_id),
    version: BigInt(v.version),
    previousDigest: fromHex(v.previous_digest),
    settings: {
      quietHours: q ? { startMinute: q.start_minute, endMinute: q.end_minute } : null,
      timezoneOffsetMinutes: v.settings.timezone_offset_minutes,
      parentApprovesBeforePlay: v.settings.parent_approves_before_play,
      retentionDays: v.settings.retention_days,
    },
    // Reversed, so that encoding has to sort them.
    members: v.members
      .map((/** @type {any} */ m) => ({
        deviceId: fromHex(m.device_id),
        accountId: fromHex(m.account_id),
        role: m.role,
        status: m.status,
        x25519Pub: fromHex(m.x25519_pub),
        ed25519Pub: fromHex(m.ed25519_pub),
      }))
      .reverse(),
  };
}

test('constants match the vector file', () => {
  assert.equal(file.constants.member_len, MEMBER_LEN);
  assert.equal(file.constants.max_members, MAX_MEMBERS);
  assert.equal(file.constants.max_retention_days, MAX_RETENTION_DAYS);
});

/** @type {Map<string, import('../../js/crypto/roster.js').SignedRoster>} */
const valid = new Map();

for (const r of file.rosters) {
  test(`roster vector ${r.name}: encode, digest, sign, decode, verify`, async () => {
    const roster = rosterFromJson(r.roster);
    const body = encodeRoster(roster);
    assert.equal(toHex(body), r.roster_bytes);
    assert.equal(toHex(await rosterDigest(body)), r.digest);
    assert.equal(toHex(encodeRoster(decodeRoster(body))), r.roster_bytes);

    const signer = await deviceFrom(file, r.signer);
    const signed = await signRoster(roster, signer);
    assert.equal(toHex(signed.signature), r.signature, 'Ed25519 is deterministic');
    assert.equal(toHex(encodeSignedRoster(signed)), r.signed_roster);

    const decoded = decodeSignedRoster(fromHex(r.signed_roster));
    assert.equal(toHex(encodeSignedRoster(decoded)), r.signed_roster);
    const accepted =
      r.verify.check === 'genesis'
        ? await verifyGenesis(decoded)
        : await verifySuccessor(decoded, /** @type {any} */ (valid.get(r.verify.previous)));
    assert.equal(toHex(encodeRoster(accepted)), r.roster_bytes);
    assert.deepEqual(await verifySignedBy(decoded, signer.public.ed25519Pub), accepted);
    valid.set(r.name, decoded);
  });
}

for (const c of file.invalid_signed_rosters) {
  test(`invalid roster refused with ${c.expected_error}: ${c.name}`, async () => {
    const bytes = fromHex(c.signed_roster);
    if (c.check === 'decode') {
      await rejectsWith(() => decodeSignedRoster(bytes), c.expected_error, c.name);
    } else if (c.check === 'genesis') {
      await rejectsWith(() => verifyGenesis(decodeSignedRoster(bytes)), c.expected_error, c.name);
    } else {
      const prev = valid.get(c.previous);
      assert.ok(prev, `roster ${c.previous} must have been accepted first`);
      await rejectsWith(
        () => verifySuccessor(decodeSignedRoster(bytes), prev),
        c.expected_error,
        c.name,
      );
    }
  });
}

test('a pinned key accepts only its own signatures', async () => {
  const v1 = decodeSignedRoster(fromHex(file.rosters[0].signed_roster));
  const dad = await deviceFrom(file, 'dad');
  await rejectsWith(() => verifySignedBy(v1, dad.public.ed25519Pub), 'bad_signature');
});

test('building the chain in JS gives the committed rosters', async () => {
  const mum = await deviceFrom(file, 'mum');
  const v1 = rosterFromJson(file.rosters[0].roster);
  const fresh = genesisRoster(v1.householdId, v1.settings, v1.members);
  assert.equal(toHex(encodeRoster(fresh)), file.rosters[0].roster_bytes);
  const v2 = await nextRosterVersion(fresh);
  assert.equal(v2.version, 2n);
  const expected = rosterFromJson(file.rosters[1].roster);
  v2.members = expected.members;
  assert.equal(toHex(encodeRoster(v2)), file.rosters[1].roster_bytes);
  const signed = await signRoster(v2, mum);
  assert.equal(toHex(encodeSignedRoster(signed)), file.rosters[1].signed_roster);
  assert.equal(fresh.version, 1n, 'the next version is a copy');
});

test('signing refuses a roster that would not decode', async () => {
  const mum = await deviceFrom(file, 'mum');
  const base = rosterFromJson(file.rosters[0].roster);
  /** @type {[Partial<import('../../js/crypto/roster.js').HouseholdSettings>, string][]} */
  const settings = [
    [{ retentionDays: 0 }, 'invalid_settings'],
    [{ retentionDays: MAX_RETENTION_DAYS + 1 }, 'invalid_settings'],
    [{ timezoneOffsetMinutes: 841 }, 'invalid_settings'],
    [{ timezoneOffsetMinutes: -721 }, 'invalid_settings'],
    [{ quietHours: { startMinute: 600, endMinute: 600 } }, 'invalid_settings'],
    [{ quietHours: { startMinute: 1440, endMinute: 10 } }, 'invalid_settings'],
  ];
  for (const [change, code] of settings) {
    const roster = { ...base, settings: { ...base.settings, ...change } };
    await rejectsWith(() => signRoster(roster, mum), code, JSON.stringify(change));
  }
  await rejectsWith(() => signRoster({ ...base, members: [] }, mum), 'no_members');
  await rejectsWith(
    () => signRoster({ ...base, members: [base.members[0], base.members[0]] }, mum),
    'members_not_sorted',
  );
  await rejectsWith(() => signRoster({ ...base, version: 0n }, mum), 'invalid_roster_version');
  await rejectsWith(() => signRoster({ ...base, version: 2n }, mum), 'invalid_roster_version');
  const weak = { ...base.members[0], ed25519Pub: fromHex(`01${'00'.repeat(31)}`) };
  await rejectsWith(() => signRoster({ ...base, members: [weak] }, mum), 'invalid_key');
  const many = Array.from({ length: MAX_MEMBERS + 1 }, (_, i) => ({
    ...base.members[0],
    deviceId: fromHex(`d0${i.toString(16).padStart(30, '0')}`),
  }));
  await rejectsWith(() => signRoster({ ...base, members: many }, mum), 'too_many_members');
});

test('roster decoding is strict about every byte', async () => {
  const body = fromHex(file.rosters[0].roster_bytes);
  const status = body.slice();
  status[69 + 33] = 3;
  await rejectsWith(() => decodeRoster(status), 'unknown_status');
  const flag = body.slice();
  flag[64] = 2;
  await rejectsWith(() => decodeRoster(flag), 'invalid_bool');
  const absentButSet = fromHex(file.rosters[2].roster_bytes);
  absentButSet[59] = 1;
  await rejectsWith(() => decodeRoster(absentButSet), 'invalid_settings');
  const version = body.slice();
  version[0] = 2;
  await rejectsWith(() => decodeRoster(version), 'unsupported_version');
});
