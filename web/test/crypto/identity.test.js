import assert from 'node:assert/strict';
import { test } from 'node:test';

import { concat, toHex } from '../../js/crypto/bytes.js';
import { isValidEd25519PublicKey, verifyStrict } from '../../js/crypto/ed25519.js';
import {
  decodeDeviceSecret,
  decodePublicIdentity,
  encodeDeviceSecret,
  encodePublicIdentity,
  fingerprint,
  generateDeviceKeys,
} from '../../js/crypto/identity.js';
import { ed25519Sign } from '../../js/crypto/primitives.js';
import { deviceFrom, fromHex, rejectsWith, scriptedRng, vectorFile } from './helpers.js';

const file = vectorFile('identity-v1.json');

for (const d of file.devices) {
  test(`identity vector ${d.name}: keys, encodings and fingerprint`, async () => {
    const keys = await deviceFrom(file, d.name);
    assert.equal(toHex(encodePublicIdentity(keys.public)), d.public_identity);
    assert.deepEqual(decodePublicIdentity(fromHex(d.public_identity)), keys.public);
    const secret = decodeDeviceSecret(fromHex(d.device_secret));
    assert.deepEqual(secret, {
      deviceId: fromHex(d.device_id),
      x25519Secret: fromHex(d.x25519_secret),
      ed25519Seed: fromHex(d.ed25519_seed),
    });
    assert.equal(toHex(encodeDeviceSecret(secret)), d.device_secret);
    assert.equal(await fingerprint(keys.public), d.fingerprint);
    assert.equal(keys.x25519Private.extractable, false);
    assert.equal(keys.ed25519Private.extractable, false);
  });

  test(`identity vector ${d.name}: generation draws the X25519 secret, then the Ed25519 seed`, async () => {
    const script = scriptedRng(fromHex(d.x25519_secret), fromHex(d.ed25519_seed));
    const keys = await generateDeviceKeys(fromHex(d.device_id), { rng: script.rng });
    assert.equal(script.left(), 0);
    assert.equal(toHex(encodePublicIdentity(keys.public)), d.public_identity);
  });
}

for (const c of file.invalid_public_identities) {
  test(`invalid public identity refused: ${c.name}`, async () => {
    await rejectsWith(() => decodePublicIdentity(fromHex(c.bytes)), c.expected_error, c.name);
  });
}

test('generated keys are non-extractable, sign, and agree', async () => {
  const id = fromHex('d0000000000040008000000000000099');
  const a = await generateDeviceKeys(id);
  const b = await generateDeviceKeys(id);
  for (const k of [a, b]) {
    assert.equal(k.x25519Private.extractable, false);
    assert.equal(k.ed25519Private.extractable, false);
    assert.ok(isValidEd25519PublicKey(k.public.ed25519Pub));
  }
  assert.notDeepEqual(a.public.x25519Pub, b.public.x25519Pub);
  const message = new TextEncoder().encode('paw pressed');
  const signature = await ed25519Sign(a.ed25519Private, message);
  assert.ok(await verifyStrict(a.public.ed25519Pub, message, signature));
  assert.ok(!(await verifyStrict(b.public.ed25519Pub, message, signature)));
  const decoded = decodePublicIdentity(encodePublicIdentity(a.public));
  assert.deepEqual(decoded, a.public);
  assert.match(await fingerprint(a.public), /^\d{5}( \d{5}){5}$/);
});

test('strict verification refuses what plain RFC 8032 verification may accept', async () => {
  // The identity point as public key and as R, with s = 0: [0]B = R + [k]A holds for any
  // message, so a non-strict verifier (Node's OpenSSL among them) accepts this "signature"
  // for everything.
  const identity = new Uint8Array(32);
  identity[0] = 1;
  const forged = concat(identity, new Uint8Array(32));
  const message = new TextEncoder().encode('anything at all');
  assert.equal(isValidEd25519PublicKey(identity), false);
  assert.equal(await verifyStrict(identity, message, forged), false);

  // A signature with s + L in place of s verifies the same equation but is non-canonical.
  const keys = await deviceFrom(file, 'mum');
  const signature = await ed25519Sign(keys.ed25519Private, message);
  assert.ok(await verifyStrict(keys.public.ed25519Pub, message, signature));
  const L = 2n ** 252n + 27742317777372353535851937790883648493n;
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(signature[i]);
  s += L;
  const malleated = signature.slice();
  for (let i = 32; i < 64; i++, s >>= 8n) malleated[i] = Number(s & 0xffn);
  assert.equal(await verifyStrict(keys.public.ed25519Pub, message, malleated), false);
});
