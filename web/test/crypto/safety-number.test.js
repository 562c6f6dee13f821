import assert from 'node:assert/strict';
import { test } from 'node:test';

import { safetyNumber } from '../../js/crypto/identity.js';
import { fromHex, vectorFile } from './helpers.js';

const file = vectorFile('safety-number-v1.json');

for (const c of file.cases) {
  test(`safety number vector ${c.name}: the app shows what the toy speaks`, async () => {
    const number = await safetyNumber({ x25519Pub: fromHex(c.x25519_pub), ed25519Pub: fromHex(c.ed25519_pub) });
    assert.equal(number, c.safety_number);
    assert.match(number, /^\d{3} \d{3}$/);
  });
}
