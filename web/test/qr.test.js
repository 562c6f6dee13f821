// The QR encoder (web/js/qr.js) module by module against the npm package qrcode, an
// independent implementation: for every mask forced, the symbol (version, data, error
// correction, placement, format and version information) must be the same; the mask chosen
// must be the one with the lowest penalty under the standard's rules.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

import QRCode from 'qrcode';

import { QR_MAX_VERSION, qrCapacity, qrMatrix, qrPenalty } from '../js/qr.js';

const require = createRequire(import.meta.url);
/** qrcode's own penalty rules; its fourth differs from the standard's (see below). */
const reference = require('qrcode/lib/core/mask-pattern.js');

/** @typedef {'L' | 'M' | 'Q' | 'H'} EcLevel */

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const MASKS = [0, 1, 2, 3, 4, 5, 6, 7];

/**
 * Recovery-code-like text of `length` characters: groups of four Crockford base32
 * characters joined by hyphens, from a fixed pseudo-random sequence.
 * @param {number} length
 * @param {number} seed
 */
function codeLike(length, seed) {
  let x = seed * 2654435761 + 1;
  let out = '';
  while (out.length < length) {
    if (out.length % 5 === 4) out += '-';
    else {
      x = (x * 1103515245 + 12345) % 2147483648;
      out += CROCKFORD[x % 32];
    }
  }
  return out;
}

/**
 * The texts compared: every length 1 to 120 of code-like text (versions 1 to 7), longer ones
 * for versions 8 to 10, URLs and UTF-8 text.
 */
const TEXTS = [
  ...Array.from({ length: 120 }, (_, i) => codeLike(i + 1, i)),
  ...[123, 140, 152, 153, 170, 180, 181, 200, 213].map((length) => codeLike(length, length)),
  'https://pawpost.example/households/3f2a9c1e-8d4b-4e7a-9c61-2b5d8f0a7e13/family',
  'https://pawpost.example/join?code=7K3M-Q9XA-4HTN-B2WD-6YRF-P8CE-ZJ0V-M5KG',
  'http://127.0.0.1:8080/',
  'Grüße aus Köln! Ein Bär für Ada. 🧸',
  'こんにちは、アダちゃん。くまさんからのメッセージです。',
  'Привет! Это сообщение от бабушки.',
  '¡Hola, Ada! ¿Cómo está tu osito? 🐻💬',
  'a'.repeat(qrCapacity(QR_MAX_VERSION, 'M')),
  '€'.repeat(Math.floor(qrCapacity(QR_MAX_VERSION, 'M') / 3)),
];

/**
 * qrcode's symbol for the text as UTF-8 bytes (byte mode, as ours), with its mask and version.
 * @param {string} text
 * @param {EcLevel} level
 * @param {number} [mask] forced, or qrcode's own choice
 */
function referenceSymbol(text, level, mask) {
  return QRCode.create([{ data: text, mode: 'byte' }], { errorCorrectionLevel: level, maskPattern: mask });
}

/**
 * @param {{ size: number, get: (row: number, col: number) => number | boolean }} modules
 * @returns {boolean[][]}
 */
function asRows(modules) {
  return Array.from({ length: modules.size }, (_, r) => Array.from({ length: modules.size }, (_, c) => Boolean(modules.get(r, c))));
}

/**
 * Fails naming the first module that differs.
 * @param {boolean[][]} ours
 * @param {boolean[][]} theirs
 * @param {string} label
 */
function sameModules(ours, theirs, label) {
  assert.equal(ours.length, theirs.length, `${label}: ${ours.length} modules a side, qrcode has ${theirs.length}`);
  for (let r = 0; r < ours.length; r++) {
    assert.equal(ours[r].length, ours.length, `${label}: row ${r} is not square`);
    for (let c = 0; c < ours.length; c++) {
      if (ours[r][c] !== theirs[r][c]) assert.fail(`${label}: module at row ${r}, column ${c} is ${ours[r][c] ? 'dark' : 'light'}, qrcode's is not`);
    }
  }
}

/**
 * The standard's fourth rule: 10 for each full 5 % that the share of dark modules is away
 * from 50 %, either way.
 * @param {boolean[][]} rows
 */
function balancePenalty(rows) {
  const total = rows.length * rows.length;
  const dark = rows.flat().filter(Boolean).length;
  return 10 * Math.floor(Math.abs(dark / total - 0.5) / 0.05 + 1e-9);
}

/**
 * @param {string} text
 * @param {EcLevel} level
 */
function checkText(text, level) {
  const label = `${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)} (${new TextEncoder().encode(text).length} bytes, level ${level})`;
  const penalties = [];
  for (const mask of MASKS) {
    const theirs = referenceSymbol(text, level, mask);
    assert.equal(theirs.maskPattern, mask);
    sameModules(qrMatrix(text, { level, mask }), asRows(theirs.modules), `${label}, mask ${mask}`);
    // qrcode's first three rules and the standard's fourth; qrcode rounds the share of dark
    // modules up to the next 5 %, so above 50 % it can rate a symbol one step worse.
    const m = theirs.modules;
    penalties.push(reference.getPenaltyN1(m) + reference.getPenaltyN2(m) + reference.getPenaltyN3(m) + balancePenalty(asRows(m)));
  }
  const best = penalties.indexOf(Math.min(...penalties));
  const ours = qrMatrix(text, { level });
  sameModules(ours, asRows(referenceSymbol(text, level, best).modules), `${label}, the mask chosen (${best} expected)`);
  assert.equal(qrPenalty(ours), penalties[best], `${label}: penalty of the chosen mask`);
  return { size: ours.length, best, theirs: referenceSymbol(text, level).maskPattern };
}

test('every text matches qrcode module by module at level M, for every mask and for the mask chosen', () => {
  const sizes = new Set();
  let sameChoice = 0;
  for (const text of TEXTS) {
    const { size, best, theirs } = checkText(text, 'M');
    sizes.add(size);
    if (best === theirs) sameChoice++;
  }
  // Versions 1 to 10 were all made (21 to 57 modules a side), version information included.
  assert.deepEqual([...sizes].sort((a, b) => a - b), [21, 25, 29, 33, 37, 41, 45, 49, 53, 57]);
  // The two fourth rules differ only now and then.
  assert.ok(sameChoice > TEXTS.length * 0.9, `qrcode chose the same mask for ${sameChoice} of ${TEXTS.length} texts`);
});

test('levels L, Q and H match qrcode too', () => {
  for (const level of /** @type {EcLevel[]} */ (['L', 'Q', 'H'])) {
    const longest = qrCapacity(QR_MAX_VERSION, level);
    for (let length = 1; length <= longest; length += 7) checkText(codeLike(length, length + 7), level);
    checkText('x'.repeat(longest), level);
  }
});

test('a recovery code fits version 3 at level M', () => {
  const code = '7K3M-Q9XA-4HTN-B2WD-6YRF-P8CE-ZJ0V-M5KG';
  assert.equal(qrMatrix(code).length, 29);
});

test('the capacities are those of the standard for byte mode', () => {
  // ISO/IEC 18004 table 7, byte mode, versions 1 to 10.
  const table = {
    L: [17, 32, 53, 78, 106, 134, 154, 192, 230, 271],
    M: [14, 26, 42, 62, 84, 106, 122, 152, 180, 213],
    Q: [11, 20, 32, 46, 60, 74, 86, 108, 130, 151],
    H: [7, 14, 24, 34, 44, 58, 64, 84, 98, 119],
  };
  for (const [level, capacities] of Object.entries(table)) {
    assert.deepEqual(
      capacities.map((_, i) => qrCapacity(i + 1, /** @type {EcLevel} */ (level))),
      capacities,
      `level ${level}`,
    );
  }
});

test('text too long for version 10 is refused with a RangeError that says the limit', () => {
  const limit = qrCapacity(QR_MAX_VERSION, 'M');
  assert.equal(qrMatrix('a'.repeat(limit)).length, 57);
  assert.throws(() => qrMatrix('a'.repeat(limit + 1)), (e) => {
    assert.ok(e instanceof RangeError);
    assert.match(e.message, new RegExp(`${limit + 1} bytes long .* at most ${limit} bytes`));
    return true;
  });
  // Bytes count, not characters: '€' takes three in UTF-8.
  assert.throws(() => qrMatrix('€'.repeat(Math.floor(limit / 3) + 1)), RangeError);
  assert.throws(() => qrMatrix('x'.repeat(qrCapacity(QR_MAX_VERSION, 'H') + 1), { level: 'H' }), /at error correction level H it holds at most 119 bytes/);
});

test('a wrong level or mask is refused', () => {
  assert.throws(() => qrMatrix('x', { level: /** @type {any} */ ('X') }), /level X: use L, M, Q or H/);
  assert.throws(() => qrMatrix('x', { mask: 8 }), /masks are 0 to 7/);
});

test("the balance rule is the standard's: whole 5 % steps away from half, both ways", () => {
  // A 20 × 20 checkerboard has no runs, blocks or finder-like patterns, and is half dark;
  // isolated modules flipped (4 apart) change only the share of dark modules.
  const board = (/** @type {number} */ flips, /** @type {boolean} */ toDark) => {
    const rows = Array.from({ length: 20 }, (_, r) => Array.from({ length: 20 }, (_, c) => (r + c) % 2 === 0));
    let done = 0;
    for (let r = 1; r < 20 && done < flips; r += 4) {
      for (let c = toDark ? 0 : 1; c < 20 && done < flips; c += 4) {
        rows[r][c] = !rows[r][c];
        done++;
      }
    }
    return rows;
  };
  assert.equal(qrPenalty(board(0, true)), 0);
  assert.equal(qrPenalty(board(8, true)), 0, '52 % dark');
  assert.equal(qrPenalty(board(8, false)), 0, '48 % dark');
  assert.equal(qrPenalty(board(20, true)), 10, '55 % dark');
  assert.equal(qrPenalty(board(24, true)), 10, '56 % dark');
  assert.equal(qrPenalty(board(24, false)), 10, '44 % dark');
});
