import assert from 'node:assert/strict';
import { test } from 'node:test';

import { toHex } from '../../js/crypto/bytes.js';
import {
  certificateInput,
  linkCode,
  signCertificate,
  verifyCertificate,
} from '../../js/crypto/certificate.js';
import {
  MediaType,
  parseEnvelopePrefix,
  sealEnvelope,
  verifySenderInRoster,
} from '../../js/crypto/envelope.js';
import { deviceKeysFromSecret, encodePublicIdentity } from '../../js/crypto/identity.js';
import {
  formatRecoveryCode,
  generateRecoveryCode,
  parseRecoveryCode,
  recoveryMember,
  recoverySeed,
  recoverySigner,
} from '../../js/crypto/recovery.js';
import {
  decodeSignedRoster,
  encodeSignedRoster,
  nextRosterVersion,
  signRoster,
  verifyGenesis,
  verifySuccessor,
} from '../../js/crypto/roster.js';
import { deviceFrom, fromHex, rejectsWith, scriptedRng, vectorFile } from './helpers.js';

const file = vectorFile('recovery-v1.json');

for (const c of file.codes) {
  test(`recovery code ${c.name}: shown, read back, and its key`, async () => {
    const bytes = fromHex(c.code_bytes);
    assert.equal(formatRecoveryCode(bytes), c.code);
    assert.deepEqual(parseRecoveryCode(c.code), bytes);
    assert.equal(toHex(await recoverySeed(bytes)), c.ed25519_seed);
    const signer = await recoverySigner(bytes);
    assert.equal(toHex(signer.ed25519Pub), c.ed25519_pub);
    assert.equal(toHex(signer.deviceId), c.device_id);
    assert.equal(signer.keys.ed25519Private.extractable, false);
  });
}

for (const c of file.parse_cases) {
  test(`recovery code typed as ${JSON.stringify(c.input)}`, async () => {
    if (c.expected_error) {
      await rejectsWith(() => parseRecoveryCode(c.input), c.expected_error);
    } else {
      assert.equal(toHex(parseRecoveryCode(c.input)), c.code_bytes);
    }
  });
}

test('a generated code draws 20 bytes and reads back', () => {
  const script = scriptedRng(fromHex(file.codes[3].code_bytes));
  assert.equal(generateRecoveryCode(script.rng), file.codes[3].code);
  assert.equal(script.left(), 0);
  const fresh = generateRecoveryCode();
  assert.match(fresh, /^([0-9A-HJKMNP-TV-Z]{4}-){7}[0-9A-HJKMNP-TV-Z]{4}$/);
  assert.equal(formatRecoveryCode(parseRecoveryCode(fresh)), fresh);
});

/**
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
    members: v.members.map((/** @type {any} */ m) => ({
      deviceId: fromHex(m.device_id),
      accountId: fromHex(m.account_id),
      role: m.role,
      status: m.status,
      x25519Pub: fromHex(m.x25519_pub),
      ed25519Pub: fromHex(m.ed25519_pub),
    })),
  };
}

test('the recovery key signs v2 of the chain, the new owner signs v3', async () => {
  const household = file.codes.find((/** @type {any} */ c) => c.name === 'household');
  const recovery = await recoverySigner(fromHex(household.code_bytes));
  /** @type {Record<string, import('../../js/crypto/roster.js').SignedRoster>} */
  const valid = {};
  for (const r of file.rosters) {
    const keys = r.signer === 'recovery' ? recovery.keys : await deviceFrom(file, r.signer);
    const signed = await signRoster(rosterFromJson(r.roster), keys);
    assert.equal(toHex(encodeSignedRoster(signed)), r.signed_roster, r.name);
    const decoded = decodeSignedRoster(fromHex(r.signed_roster));
    if (r.verify.check === 'genesis') await verifyGenesis(decoded);
    else await verifySuccessor(decoded, valid[r.verify.previous]);
    valid[r.name] = decoded;
  }
  const member = valid.v1.roster.members.find((m) => m.role === 'recovery');
  assert.ok(member);
  assert.deepEqual(recoveryMember(recovery, member.accountId), member);

  // The same chain built from the API: the recovery member and a successor it signs.
  const next = await nextRosterVersion(valid.v1.roster);
  const known = new Set(valid.v1.roster.members.map((m) => toHex(m.deviceId)));
  next.members.push(...valid.v2.roster.members.filter((m) => !known.has(toHex(m.deviceId))));
  const v2 = await signRoster(next, recovery.keys);
  assert.equal(toHex(encodeSignedRoster(v2)), file.rosters[1].signed_roster);
  for (const c of file.invalid_signed_rosters) {
    await rejectsWith(
      async () => {
        const signed = decodeSignedRoster(fromHex(c.signed_roster));
        if (c.check === 'genesis') await verifyGenesis(signed);
        else if (c.check === 'successor') await verifySuccessor(signed, valid[c.previous]);
      },
      c.expected_error,
      c.name,
    );
  }
});

test('a recovery member is encoded with an X25519 key of zeros', async () => {
  const household = file.codes.find((/** @type {any} */ c) => c.name === 'household');
  const recovery = await recoverySigner(fromHex(household.code_bytes));
  const v1 = decodeSignedRoster(fromHex(file.rosters[0].signed_roster));
  const roster = structuredClone(v1.roster);
  for (const m of roster.members) {
    if (m.role === 'recovery') m.x25519Pub = new Uint8Array(32).fill(7);
  }
  const mum = await deviceFrom(file, 'mum');
  assert.deepEqual((await signRoster(roster, mum)).rosterBytes, v1.rosterBytes);
  const member = recoveryMember(recovery, new Uint8Array(16));
  assert.equal(member.x25519Pub.every((b) => b === 0), true);
});

for (const c of file.certificates) {
  test(`certificate: ${c.name}`, async () => {
    const certifier = await deviceFrom(file, c.certifier);
    const account = fromHex(c.account_id);
    const identity = fromHex(c.identity);
    assert.equal(toHex(certificateInput(account, certifier.deviceId, identity)), c.input);
    const signature = await signCertificate(certifier, account, identity);
    assert.equal(toHex(signature), c.signature);
    const check = {
      certifierEd25519Pub: certifier.public.ed25519Pub,
      accountId: account,
      certifierId: certifier.deviceId,
      identityBytes: identity,
      signature,
    };
    assert.equal(await verifyCertificate(check), true);
  });
}

for (const c of file.invalid_certificates) {
  test(`certificate refused: ${c.name}`, async () => {
    const certifier = await deviceFrom(file, c.certifier);
    const ok = await verifyCertificate({
      certifierEd25519Pub: certifier.public.ed25519Pub,
      accountId: fromHex(c.account_id),
      certifierId: fromHex(c.certifier_id),
      identityBytes: fromHex(c.identity),
      signature: fromHex(c.signature),
    });
    assert.equal(ok, false);
  });
}

for (const c of file.link_codes) {
  test(`link code of ${c.name}`, async () => {
    const keys = await deviceFrom(file, c.name);
    assert.equal(toHex(encodePublicIdentity(keys.public)), c.identity);
    assert.equal(await linkCode(fromHex(c.identity)), c.link_code);
    assert.match(c.link_code, /^\d{4} \d{4} \d{4} \d{4}$/);
  });
}

test('the recovery key never sends, and nothing is sealed to it', async () => {
  const household = file.codes.find((/** @type {any} */ c) => c.name === 'household');
  const code = fromHex(household.code_bytes);
  const recovery = await recoverySigner(code);
  const v1 = decodeSignedRoster(fromHex(file.rosters[0].signed_roster));
  const member = v1.roster.members.find((m) => m.role === 'recovery');
  assert.ok(member);
  const mum = await deviceFrom(file, 'mum');
  const params = {
    messageId: fromHex('3e3e3e3e3e3e403e803e3e3e3e3e0001'),
    householdId: v1.roster.householdId,
    createdAtMs: Date.UTC(2026, 0, 2),
    mediaType: MediaType.OGG_OPUS,
    durationMs: 1000,
    recipients: [mum.public, member],
  };
  await rejectsWith(() => sealEnvelope(mum, params, new Uint8Array(10)), 'invalid_recipient_key');

  // Whoever holds the code could sign an envelope in its name: it is refused.
  const holder = await deviceKeysFromSecret({
    deviceId: recovery.deviceId,
    x25519Secret: new Uint8Array(32).fill(1),
    ed25519Seed: await recoverySeed(code),
  });
  assert.deepEqual(holder.public.ed25519Pub, member.ed25519Pub);
  const toMum = { ...params, recipients: [mum.public] };
  const envelope = await sealEnvelope(holder, toMum, new Uint8Array(10));
  const { prefix } = parseEnvelopePrefix(envelope);
  await rejectsWith(() => verifySenderInRoster(prefix, v1.roster), 'sender_not_approved');
});
