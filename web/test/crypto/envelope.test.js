import assert from 'node:assert/strict';
import { test } from 'node:test';

import { toHex } from '../../js/crypto/bytes.js';
import {
  CHUNK_SIZE,
  ciphertextLen,
  encodeHeader,
  HEADER_FIXED_LEN,
  MAX_CHUNK_COUNT,
  MAX_PAYLOAD_LEN,
  MAX_RECIPIENTS,
  MediaType,
  openEnvelope,
  parseEnvelopePrefix,
  parseHeader,
  sealEnvelope,
  TAG_LEN,
  verifySenderInRoster,
  WRAPPED_KEY_LEN,
} from '../../js/crypto/envelope.js';
import { deriveKeyPair } from '../../js/crypto/hpke.js';
import { generateDeviceKeys } from '../../js/crypto/identity.js';
import { hkdfSha256 } from '../../js/crypto/primitives.js';
import { decodeSignedRoster } from '../../js/crypto/roster.js';
import { deviceFrom, fromHex, rejectsWith, scriptedRng, vectorFile } from './helpers.js';

const file = vectorFile('envelope-v1.json');

test('constants match the vector file', () => {
  const c = file.constants;
  assert.equal(c.chunk_size, CHUNK_SIZE);
  assert.equal(c.tag_len, TAG_LEN);
  assert.equal(c.header_fixed_len, HEADER_FIXED_LEN);
  assert.equal(c.wrapped_key_len, WRAPPED_KEY_LEN);
  assert.equal(c.max_recipients, MAX_RECIPIENTS);
  assert.equal(c.max_payload_len, MAX_PAYLOAD_LEN);
  assert.equal(c.max_chunk_count, MAX_CHUNK_COUNT);
});

for (const m of file.messages) {
  test(`envelope vector opens for every recipient: ${m.name}`, async () => {
    const sender = await deviceFrom(file, m.sender);
    const envelope = fromHex(m.envelope);
    for (const name of m.recipients) {
      const me = await deviceFrom(file, name);
      const opened = await openEnvelope(envelope, me, sender.public);
      assert.equal(toHex(opened.payload), m.payload, name);
      assert.equal(opened.header.mediaType, m.media_type);
      assert.equal(opened.header.createdAtMs, BigInt(m.created_at_ms));
      assert.equal(opened.header.durationMs, m.duration_ms);
      assert.equal(toHex(opened.header.messageId), m.message_id);
      assert.equal(toHex(opened.header.householdId), m.household_id);
      assert.equal(toHex(encodeHeader(opened.header)), m.header);
    }
  });

  test(`envelope vector reseals byte for byte from its randomness: ${m.name}`, async () => {
    const sender = await deviceFrom(file, m.sender);
    const recipients = await Promise.all(
      m.recipients.map((/** @type {string} */ r) => deviceFrom(file, r)),
    );
    const script = scriptedRng(fromHex(m.content_key), ...m.hpke_ephemeral_ikm.map(fromHex));
    const params = {
      messageId: fromHex(m.message_id),
      householdId: fromHex(m.household_id),
      createdAtMs: m.created_at_ms,
      mediaType: m.media_type,
      durationMs: m.duration_ms,
      recipients: recipients.map((r) => r.public),
    };
    const envelope = await sealEnvelope(sender, params, fromHex(m.payload), { rng: script.rng });
    assert.equal(script.left(), 0, 'draws exactly the content key and one IKM per recipient');
    assert.equal(toHex(envelope), m.envelope);

    // Intermediate values, each on its own.
    const okm = await hkdfSha256(
      fromHex(m.message_id),
      fromHex(m.content_key),
      new TextEncoder().encode('pawpost/v1/payload'),
      39,
    );
    assert.equal(toHex(okm.subarray(0, 32)), m.payload_key);
    assert.equal(toHex(okm.subarray(32)), m.nonce_prefix);
    const { prefix, rest } = parseEnvelopePrefix(envelope);
    assert.equal(toHex(prefix.headerBytes), m.header);
    assert.equal(toHex(prefix.payloadDigest), m.payload_digest);
    assert.equal(toHex(prefix.signature), m.signature);
    assert.equal(rest.length, ciphertextLen(fromHex(m.payload).length));
    assert.deepEqual(
      m.chunk_lengths,
      m.chunk_nonces.map(
        (/** @type {string} */ _, /** @type {number} */ i) =>
          Math.min(CHUNK_SIZE, Math.max(0, fromHex(m.payload).length - i * CHUNK_SIZE)) + TAG_LEN,
      ),
    );
    for (const [i, nonce] of m.chunk_nonces.entries()) {
      const last = i + 1 === m.chunk_nonces.length ? '01' : '00';
      assert.equal(nonce, m.nonce_prefix + i.toString(16).padStart(8, '0') + last);
    }
    for (const [k, slot] of m.wrapped_keys.entries()) {
      const ephemeral = await deriveKeyPair(fromHex(m.hpke_ephemeral_ikm[k]));
      assert.equal(toHex(ephemeral.publicKey), slot.enc);
      assert.equal(toHex(prefix.wrappedKeys[k]), slot.enc + slot.sealed_key);
      assert.equal(slot.aad, toHex(recipients[k].deviceId));
    }
  });
}

for (const n of file.invalid_envelopes) {
  test(`invalid envelope refused with ${n.expected_error}: ${n.name}`, async () => {
    const me = await deviceFrom(file, n.opener);
    const sender = await deviceFrom(file, n.sender);
    await rejectsWith(
      () => openEnvelope(fromHex(n.envelope), me, sender.public),
      n.expected_error,
      n.name,
    );
  });
}

/** @param {number} length */
function payloadOf(length) {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + (i >> 8)) & 0xff;
  return out;
}

const household = fromHex('40000000000040008000000000000007');

/** @param {number} n */
function deviceId(n) {
  return fromHex(`d00000000000400080000000000000${n.toString(16).padStart(2, '0')}`);
}

for (const size of [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 100]) {
  test(`round trip, ${size} payload bytes, three recipients`, async () => {
    const sender = await generateDeviceKeys(deviceId(1));
    const recipients = await Promise.all([2, 3, 4].map((n) => generateDeviceKeys(deviceId(n))));
    const outsider = await generateDeviceKeys(deviceId(5));
    const payload = payloadOf(size);
    const params = {
      messageId: fromHex(`3e3e3e3e3e3e403e803e3e3e3e3e${size.toString(16).padStart(4, '0')}`),
      householdId: household,
      createdAtMs: Date.UTC(2026, 0, 2, 3, 4, 5),
      mediaType: MediaType.OGG_OPUS,
      durationMs: 1234,
      recipients: recipients.map((r) => r.public),
    };
    const envelope = await sealEnvelope(sender, params, payload);
    const n = recipients.length;
    assert.equal(
      envelope.length,
      HEADER_FIXED_LEN + 16 * n + 32 + 64 + WRAPPED_KEY_LEN * n + ciphertextLen(size),
    );
    for (const me of recipients) {
      const opened = await openEnvelope(envelope, me, sender.public);
      assert.deepEqual(opened.payload, payload);
      assert.equal(opened.header.payloadLen, size);
      assert.equal(opened.header.createdAtMs, BigInt(params.createdAtMs));
    }
    await rejectsWith(() => openEnvelope(envelope, outsider, sender.public), 'not_a_recipient');
    // A recipient's id with another device's private key: the HPKE unwrap fails.
    const impostor = { ...outsider, deviceId: recipients[0].deviceId };
    await rejectsWith(() => openEnvelope(envelope, impostor, sender.public), 'key_unwrap');
    const twice = await sealEnvelope(sender, params, payload);
    assert.notDeepEqual(twice, envelope, 'fresh content key and ephemeral keys each time');
  });
}

test('sealing refuses what the format cannot carry', async () => {
  const sender = await generateDeviceKeys(deviceId(1));
  const other = await generateDeviceKeys(deviceId(2));
  const base = {
    messageId: fromHex('3e3e3e3e3e3e403e803e3e3e3e3e3eff'),
    householdId: household,
    createdAtMs: 0,
    mediaType: MediaType.TEXT,
    durationMs: 0,
    recipients: [other.public],
  };
  await rejectsWith(
    () => sealEnvelope(sender, { ...base, recipients: [] }, new Uint8Array(1)),
    'no_recipients',
  );
  const many = Array.from({ length: MAX_RECIPIENTS + 1 }, (_, i) => ({
    ...other.public,
    deviceId: deviceId(i),
  }));
  await rejectsWith(
    () => sealEnvelope(sender, { ...base, recipients: many }, new Uint8Array(1)),
    'too_many_recipients',
  );
  await rejectsWith(
    () =>
      sealEnvelope(
        sender,
        { ...base, recipients: [other.public, other.public] },
        new Uint8Array(1),
      ),
    'duplicate_recipient',
  );
  await rejectsWith(
    () => sealEnvelope(sender, base, new Uint8Array(MAX_PAYLOAD_LEN + 1)),
    'payload_too_large',
  );
  const lowOrder = { ...other.public, x25519Pub: new Uint8Array(32) };
  await rejectsWith(
    () => sealEnvelope(sender, { ...base, recipients: [lowOrder] }, new Uint8Array(1)),
    'invalid_recipient_key',
  );
});

test('header decoding is strict', async () => {
  const m = file.messages[2];
  const header = fromHex(m.header);
  assert.equal(toHex(encodeHeader(parseHeader(header))), m.header);
  const media = header.slice();
  media[1] = 9;
  await rejectsWith(() => parseHeader(media), 'unknown_media_type');
  const none = header.slice(0, HEADER_FIXED_LEN);
  none[70] = 0;
  none[71] = 0;
  await rejectsWith(() => parseHeader(none), 'no_recipients');
  const duplicate = header.slice();
  duplicate.set(header.subarray(72, 88), 88);
  await rejectsWith(() => parseHeader(duplicate), 'duplicate_recipient');
  const large = header.slice();
  new DataView(large.buffer).setBigUint64(62, BigInt(MAX_PAYLOAD_LEN) + 1n);
  await rejectsWith(() => parseHeader(large), 'payload_too_large');
  await rejectsWith(() => parseHeader(header.subarray(0, header.length - 1)), 'truncated');
});

test('a trusting device checks the sender against its roster first', async () => {
  const rosters = vectorFile('roster-v1.json');
  const v3 = decodeSignedRoster(fromHex(rosters.rosters[2].signed_roster)).roster;
  const devices = Object.fromEntries(
    await Promise.all(
      ['grandma', 'uncle', 'outsider', 'toy'].map(async (n) => [n, await deviceFrom(rosters, n)]),
    ),
  );
  /** @param {import('../../js/crypto/identity.js').DeviceKeys} sender */
  const sealFrom = (sender, householdId = v3.householdId) =>
    sealEnvelope(
      sender,
      {
        messageId: fromHex('3e3e3e3e3e3e403e803e3e3e3e3e3e77'),
        householdId,
        createdAtMs: 1767225600000,
        mediaType: MediaType.OGG_OPUS,
        durationMs: 500,
        recipients: [devices.toy.public],
      },
      payloadOf(10),
    );
  const fromGrandma = parseEnvelopePrefix(await sealFrom(devices.grandma)).prefix;
  assert.deepEqual(await verifySenderInRoster(fromGrandma, v3), devices.grandma.public);
  const fromUncle = parseEnvelopePrefix(await sealFrom(devices.uncle)).prefix;
  await rejectsWith(
    () => verifySenderInRoster(fromUncle, v3),
    'sender_not_approved',
    'blocked in v3',
  );
  const fromOutsider = parseEnvelopePrefix(await sealFrom(devices.outsider)).prefix;
  await rejectsWith(
    () => verifySenderInRoster(fromOutsider, v3),
    'sender_not_approved',
    'never a member',
  );
  const elsewhere = parseEnvelopePrefix(
    await sealFrom(devices.grandma, fromHex('40000000000040008000000000000002')),
  ).prefix;
  await rejectsWith(() => verifySenderInRoster(elsewhere, v3), 'wrong_household');
});
