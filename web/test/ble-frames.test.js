// The relay's fragments against the committed vectors the Rust crate checks too
// (test-vectors/ble-fragments-v1.json): the same bytes out, the same judgement of damage.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { BleError, Fragmenter, MAX_FRAME_LEN, Reassembler, frameCrc } from '../js/ble-frames.js';

const vectors = JSON.parse(
  readFileSync(new URL('../../test-vectors/ble-fragments-v1.json', import.meta.url), 'utf8'),
);
const hex = (/** @type {Uint8Array} */ b) => Buffer.from(b).toString('hex');
const bytes = (/** @type {string} */ h) => new Uint8Array(Buffer.from(h, 'hex'));

test('the fragmenter makes exactly the committed fragments and the reassembler undoes them', () => {
  assert.equal(vectors.max_frame_len, MAX_FRAME_LEN);
  assert.ok(vectors.fragmentation.length >= 6);
  for (const c of vectors.fragmentation) {
    const frame = bytes(c.frame);
    assert.equal(frameCrc(c.seq, frame).toString(16).padStart(8, '0'), c.crc, c.description);
    const made = new Fragmenter(c.mtu, c.seq).fragment(frame);
    assert.deepEqual(made.map(hex), c.fragments, c.description);
    const r = new Reassembler(c.mtu);
    const results = c.fragments.map((/** @type {string} */ f) => r.push(bytes(f)));
    const whole = results.pop();
    assert.ok(results.every((x) => x === null), c.description);
    assert.deepEqual(whole && { seq: whole.seq, missed: whole.missed, data: hex(whole.data) },
      { seq: c.seq, missed: 0, data: c.frame }, c.description);
  }
});

test('the reassembler judges each committed damaged stream as the vectors say', () => {
  assert.ok(vectors.reassembly.length >= 5);
  for (const c of vectors.reassembly) {
    const r = new Reassembler(c.mtu);
    c.steps.forEach((/** @type {any} */ step, /** @type {number} */ n) => {
      const where = `${c.description}, step ${n}`;
      let got;
      try {
        got = r.push(bytes(step.fragment));
      } catch (e) {
        assert.ok(e instanceof BleError, where);
        assert.equal(e.kind, step.expect.error, `${where}: ${e.message}`);
        return;
      }
      if (got === null) {
        assert.equal(step.expect.more, true, where);
      } else {
        assert.deepEqual({ seq: got.seq, missed: got.missed, data: hex(got.data) },
          { seq: step.expect.seq, missed: step.expect.missed, data: step.expect.frame }, where);
      }
    });
  }
});

test('a frame larger than the limit is refused, and sequence numbers wrap after 65535', () => {
  assert.throws(() => new Fragmenter(23).fragment(new Uint8Array(MAX_FRAME_LEN + 1)), { kind: 'FrameTooLarge' });
  assert.throws(() => new Fragmenter(22), { kind: 'InvalidMtu' });
  const f = new Fragmenter(247, 0xffff);
  const r = new Reassembler(247);
  for (const seq of [0xffff, 0, 1]) {
    const frame = new Uint8Array(500).fill(seq & 0xff);
    const fragments = f.fragment(frame);
    const whole = fragments.map((x) => r.push(x)).pop();
    assert.equal(whole?.seq, seq);
    assert.equal(whole?.missed, 0);
    assert.deepEqual(whole?.data, frame);
  }
});
