// The Ogg Opus writer and reader, and the WebM reader behind the recorder's remux.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

import { oggCrc, OggOpusWriter, parsePage, readOggOpus } from '../../js/media/ogg.js';
import { packetSamples } from '../../js/media/opus.js';
import { webmToOggOpus } from '../../js/media/remux.js';
import { opusFromWebm } from '../../js/media/webm.js';

const FIXTURES = new URL('../../../crates/pawpost-media/tests/fixtures/', import.meta.url);
const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith('.ogg'));

test('CRC-32 of Ogg (poly 0x04C11DB7, no reflection) matches the reference value', () => {
  // CRC-32/MPEG-2 without init/xorout ("CRC-32/OGG" in catalogues): check value of "123456789".
  assert.equal(oggCrc(new TextEncoder().encode('123456789')), 0x89a1897f);
  assert.equal(oggCrc(new Uint8Array(0)), 0);
});

test('reads the real files opusenc made, checking every CRC', () => {
  assert.ok(fixtures.length >= 3);
  for (const name of fixtures) {
    const info = readOggOpus(new Uint8Array(readFileSync(new URL(name, FIXTURES))));
    assert.ok(info.packets.length > 10, name);
    assert.ok(info.durationMs > 500 && info.durationMs < 30000, `${name}: ${info.durationMs}`);
  }
});

test('a flipped byte fails the CRC', () => {
  const file = new Uint8Array(readFileSync(new URL(fixtures[0], FIXTURES)));
  file[file.length - 3] ^= 0x10;
  assert.throws(() => readOggOpus(file), /CRC/);
});

test('remuxing real packets gives a valid stream of the same packets and duration', () => {
  for (const name of fixtures) {
    const original = readOggOpus(new Uint8Array(readFileSync(new URL(name, FIXTURES))));
    const w = new OggOpusWriter(original.channels, original.preSkip, 0x5eed);
    for (const p of original.packets) w.pushPacket(p);
    const out = readOggOpus(w.finish(0));
    assert.equal(out.channels, original.channels);
    assert.equal(out.serial, 0x5eed);
    assert.deepEqual(out.packets, original.packets);
    // The original trims the end; ours keeps whole packets (within one packet).
    assert.ok(Math.abs(out.durationMs - original.durationMs) <= 120, name);
  }
});

test('the writer matches the reference writer: 50 CELT 20 ms packets, pre-skip 312 = 994 ms', () => {
  const w = new OggOpusWriter(1, 312, 0x5eed);
  for (let i = 0; i < 50; i++) w.pushPacket(Uint8Array.of(31 << 3, 1, 2, 3));
  const file = w.finish(0);
  const info = readOggOpus(file);
  assert.equal(info.durationMs, 994);
  assert.equal(info.pageCount, 3);
  const first = parsePage(file, 0);
  assert.equal(first.flags, 0x02);
  assert.equal(first.granule, 0n);
  const second = parsePage(file, first.length);
  assert.equal(second.granule, 0n);
  const last = parsePage(file, first.length + second.length);
  assert.equal(last.flags, 0x04);
  assert.equal(last.granule, 50n * 960n);
});

test('a packet longer than a page continues on the next one', () => {
  const w = new OggOpusWriter(2, 312, 7);
  // Code 3 CBR: 48 frames of 1000 bytes of 2.5 ms CELT (config 16) = 120 ms.
  const big = new Uint8Array(2 + 48 * 1000);
  big[0] = (16 << 3) | 3;
  big[1] = 48;
  w.pushPacket(Uint8Array.of(31 << 3, 0));
  w.pushPacket(big);
  w.pushPacket(Uint8Array.of(31 << 3, 0));
  const file = w.finish(0);
  const info = readOggOpus(file);
  assert.equal(info.packets.length, 3);
  assert.deepEqual(info.packets[1], big);
  assert.ok(info.pageCount >= 4);
});

test('packet durations follow the TOC byte', () => {
  assert.equal(packetSamples(Uint8Array.of(31 << 3)), 960);
  assert.equal(packetSamples(Uint8Array.of((1 << 3) | 1, 5, 5)), 1920);
  assert.equal(packetSamples(Uint8Array.of((3 << 3) | 3, 2, 0, 0)), 5760);
  assert.throws(() => packetSamples(Uint8Array.of((3 << 3) | 3, 3, 0, 0, 0)), /120 ms/);
  assert.throws(() => packetSamples(new Uint8Array(0)), /empty/);
});

/**
 * A WebM element: id bytes, then the size as an 8-byte EBML number (or unknown).
 * @param {number[]} id
 * @param {Uint8Array | null} body null for an unknown-size master whose children follow
 */
function el(id, body) {
  const size = new Uint8Array(8);
  if (body === null) size.set([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  else {
    size[0] = 0x01;
    let n = body.length;
    for (let i = 7; i > 0; i--, n = Math.floor(n / 256)) size[i] = n & 0xff;
  }
  return Uint8Array.from([...id, ...size, ...(body ?? [])]);
}
/** @param {...Uint8Array} parts */
const cat = (...parts) => Uint8Array.from(parts.flatMap((p) => [...p]));

test('reads Opus packets from a MediaRecorder-style WebM and remuxes them', () => {
  const head = new Uint8Array(19);
  head.set(new TextEncoder().encode('OpusHead'));
  head.set([1, 1, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0], 8);
  const entry = el([0xae], cat(
    el([0xd7], Uint8Array.of(1)),
    el([0x86], new TextEncoder().encode('A_OPUS')),
    el([0x63, 0xa2], head),
    el([0xe1], el([0x9f], Uint8Array.of(1))),
  ));
  const frame = (/** @type {number} */ i) =>
    el([0xa3], Uint8Array.of(0x81, 0, i * 20, 0x80, 31 << 3, i, i));
  const webm = cat(
    el([0x1a, 0x45, 0xdf, 0xa3], el([0x42, 0x82], new TextEncoder().encode('webm'))),
    el([0x18, 0x53, 0x80, 0x67], null),
    el([0x15, 0x49, 0xa9, 0x66], el([0x2a, 0xd7, 0xb1], Uint8Array.of(0x0f, 0x42, 0x40))),
    el([0x16, 0x54, 0xae, 0x6b], entry),
    el([0x1f, 0x43, 0xb6, 0x75], null),
    el([0xe7], Uint8Array.of(0)),
    ...Array.from({ length: 10 }, (_, i) => frame(i)),
    el([0x1f, 0x43, 0xb6, 0x75], null),
    el([0xe7], Uint8Array.of(200)),
    ...Array.from({ length: 10 }, (_, i) => frame(i + 10)),
  );
  const { channels, preSkip, packets } = opusFromWebm(webm);
  assert.equal(channels, 1);
  assert.equal(preSkip, 312);
  assert.equal(packets.length, 20);
  assert.deepEqual(packets[3], Uint8Array.of(31 << 3, 3, 3));
  const { ogg, durationMs } = webmToOggOpus(webm, { serial: 1 });
  const info = readOggOpus(ogg);
  assert.equal(info.packets.length, 20);
  assert.equal(durationMs, info.durationMs);
  assert.equal(info.durationMs, Math.round(((20 * 960 - 312) * 1000) / 48000));
  // Cut at the limit.
  const cut = webmToOggOpus(webm, { serial: 1, maxMs: 100 });
  assert.ok(cut.durationMs <= 100 + 20);
});
