import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  deriveKeyPair,
  labeledExpand,
  setupBaseR,
  setupBaseS,
  SUITE_IDS,
} from '../../js/crypto/hpke.js';
import { fromHex, vectorFile } from './helpers.js';

const file = vectorFile('hpke-rfc9180-x25519-sha256-aes256gcm.json');

test('the vector file holds only our suite in base mode', () => {
  assert.ok(file.vectors.length > 0);
  for (const v of file.vectors) {
    assert.deepEqual([v.mode, v.kem_id, v.kdf_id, v.aead_id], [0, 0x20, 1, 2]);
  }
});

for (const [n, v] of file.vectors.entries()) {
  test(`RFC 9180 vector ${n}: DeriveKeyPair, key schedule, seal, open, export`, async () => {
    const recipient = await deriveKeyPair(fromHex(v.ikmR));
    assert.deepEqual(recipient.privateKeyBytes, fromHex(v.skRm));
    assert.deepEqual(recipient.publicKey, fromHex(v.pkRm));
    const ephemeral = await deriveKeyPair(fromHex(v.ikmE));
    assert.deepEqual(ephemeral.privateKeyBytes, fromHex(v.skEm));
    assert.deepEqual(ephemeral.publicKey, fromHex(v.pkEm));

    const info = fromHex(v.info);
    const sender = await setupBaseS(fromHex(v.pkRm), info, fromHex(v.ikmE));
    assert.ok(sender);
    assert.deepEqual(sender.enc, fromHex(v.enc));
    const receiver = await setupBaseR(fromHex(v.enc), recipient, info);
    assert.ok(receiver);
    for (const ctx of [sender.context, receiver]) {
      const s = ctx.schedule;
      assert.deepEqual(s.sharedSecret, fromHex(v.shared_secret));
      assert.deepEqual(s.keyScheduleContext, fromHex(v.key_schedule_context));
      assert.deepEqual(s.secret, fromHex(v.secret));
      assert.deepEqual(s.key, fromHex(v.key));
      assert.deepEqual(s.baseNonce, fromHex(v.base_nonce));
      assert.deepEqual(s.exporterSecret, fromHex(v.exporter_secret));
    }

    for (const e of v.encryptions) {
      // The file skips sequences 22-226; move both contexts to the listed one.
      sender.context.seq = e.seq;
      receiver.seq = e.seq;
      const ct = await sender.context.seal(fromHex(e.aad), fromHex(e.pt));
      assert.deepEqual(ct, fromHex(e.ct), `seal at seq ${e.seq}`);
      assert.deepEqual(
        await receiver.open(fromHex(e.aad), ct),
        fromHex(e.pt),
        `open at seq ${e.seq}`,
      );
    }

    for (const x of v.exports) {
      const exported = await labeledExpand(
        SUITE_IDS.hpke,
        receiver.schedule.exporterSecret,
        'sec',
        fromHex(x.exporter_context),
        x.L,
      );
      assert.deepEqual(exported, fromHex(x.exported_value));
    }
  });
}

test('consecutive seals advance the sequence number; a failed open does not', async () => {
  const v = file.vectors[0];
  const recipient = await deriveKeyPair(fromHex(v.ikmR));
  const sender = await setupBaseS(recipient.publicKey, fromHex(v.info), fromHex(v.ikmE));
  const receiver = await setupBaseR(fromHex(v.enc), recipient, fromHex(v.info));
  assert.ok(sender && receiver);
  for (const e of v.encryptions.slice(0, 3)) {
    assert.deepEqual(await sender.context.seal(fromHex(e.aad), fromHex(e.pt)), fromHex(e.ct));
  }
  const first = v.encryptions[0];
  assert.equal(await receiver.open(fromHex('00'), fromHex(first.ct)), null);
  assert.equal(receiver.seq, 0);
  assert.deepEqual(await receiver.open(fromHex(first.aad), fromHex(first.ct)), fromHex(first.pt));
  assert.equal(receiver.seq, 1);
});

test('a low-order recipient key or enc is refused, not turned into a zero shared secret', async () => {
  const v = file.vectors[0];
  const zero = new Uint8Array(32);
  assert.equal(await setupBaseS(zero, fromHex(v.info), fromHex(v.ikmE)), null);
  const recipient = await deriveKeyPair(fromHex(v.ikmR));
  assert.equal(await setupBaseR(zero, recipient, fromHex(v.info)), null);
});
