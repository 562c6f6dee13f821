import assert from 'node:assert/strict';
import { test } from 'node:test';

import { loadOrCreateDeviceKeys, memoryKeyStore } from '../../js/crypto/keystore.js';
import { openEnvelope, sealEnvelope, MediaType } from '../../js/crypto/envelope.js';
import { fromHex } from './helpers.js';

const deviceId = fromHex('d0000000000040008000000000000042');

test('keys are created once, stored non-extractable, and loaded back usable', async () => {
  const store = memoryKeyStore();
  const created = await loadOrCreateDeviceKeys(deviceId, store);
  assert.equal(created.x25519Private.extractable, false);
  assert.equal(created.ed25519Private.extractable, false);
  const loaded = await loadOrCreateDeviceKeys(deviceId, store);
  assert.deepEqual(loaded.public, created.public);

  // The loaded copy (structured-cloned, as IndexedDB returns it) still signs and decrypts.
  const envelope = await sealEnvelope(
    loaded,
    {
      messageId: fromHex('3e3e3e3e3e3e403e803e3e3e3e3e3e42'),
      householdId: fromHex('40000000000040008000000000000001'),
      createdAtMs: 1,
      mediaType: MediaType.TEXT,
      durationMs: 0,
      recipients: [created.public],
    },
    new TextEncoder().encode('hello'),
  );
  const opened = await openEnvelope(envelope, loaded, created.public);
  assert.equal(new TextDecoder().decode(opened.payload), 'hello');
});

test('two callers starting at once end up with the same keys', async () => {
  const store = memoryKeyStore();
  const [a, b] = await Promise.all([
    loadOrCreateDeviceKeys(deviceId, store),
    loadOrCreateDeviceKeys(deviceId, store),
  ]);
  assert.deepEqual(a.public, b.public);
  const other = await loadOrCreateDeviceKeys(fromHex('d0000000000040008000000000000043'), store);
  assert.notDeepEqual(other.public.x25519Pub, a.public.x25519Pub);
});
