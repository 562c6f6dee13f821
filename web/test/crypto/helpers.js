// Shared by the crypto tests: reads the committed vectors and rebuilds their devices.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { concat, fromHex } from '../../js/crypto/bytes.js';
import { PawpostCryptoError } from '../../js/crypto/errors.js';
import { deviceKeysFromSecret } from '../../js/crypto/identity.js';

export { fromHex };

/**
 * @param {string} name a file in test-vectors/
 * @returns {any}
 */
export function vectorFile(name) {
  const url = new URL(`../../../test-vectors/${name}`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8'));
}

/**
 * Hands out exactly the given bytes, in order, then fails: proves that a function draws
 * what the Rust side draws, in the same order, and nothing more.
 * @param {...Uint8Array} parts
 * @returns {{ rng: (n: number) => Uint8Array, left: () => number }}
 */
export function scriptedRng(...parts) {
  const all = concat(...parts);
  let offset = 0;
  return {
    rng(n) {
      if (offset + n > all.length) throw new Error('scripted randomness exhausted');
      const out = all.slice(offset, offset + n);
      offset += n;
      return out;
    },
    left: () => all.length - offset,
  };
}

/**
 * The keys of a named device in a vector file, checked against its listed public keys.
 * @param {any} file
 * @param {string} name
 */
export async function deviceFrom(file, name) {
  const d = file.devices.find((/** @type {any} */ x) => x.name === name);
  assert.ok(d, `no device ${name}`);
  const keys = await deviceKeysFromSecret({
    deviceId: fromHex(d.device_id),
    x25519Secret: fromHex(d.x25519_secret),
    ed25519Seed: fromHex(d.ed25519_seed),
  });
  assert.deepEqual(keys.public.x25519Pub, fromHex(d.x25519_pub), `${name} x25519`);
  assert.deepEqual(keys.public.ed25519Pub, fromHex(d.ed25519_pub), `${name} ed25519`);
  return keys;
}

/**
 * Asserts that `action` fails with a PawpostCryptoError of the given code.
 * @param {() => unknown} action
 * @param {string} code
 * @param {string} [what]
 */
export async function rejectsWith(action, code, what) {
  await assert.rejects(
    async () => action(),
    (/** @type {unknown} */ e) => {
      assert.ok(e instanceof PawpostCryptoError, `${what ?? code}: not a PawpostCryptoError: ${e}`);
      assert.equal(e.code, code, what);
      return true;
    },
  );
}
