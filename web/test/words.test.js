// Every error code the server can answer with has plain words for the screen (web/js/words.js),
// and each password rule the server enforces gets its own sentence on the forms: no server
// sentence, rule name or code ever reaches a person.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ApiError } from '../js/api.js';
import { ERROR_WORDS, errorWords, fieldFor, passwordRejectedWords } from '../js/words.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SERVER = join(REPO, 'crates/pawpost-server/src');

/** @param {string} dir @returns {string[]} */
function rustFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? rustFiles(path) : path.endsWith('.rs') ? [path] : [];
  });
}

/**
 * The `error` codes the server's source gives an answer: the first string literal after
 * each `ApiError::new/bad_request/unprocessable/forbidden/conflict(`, and each `code: "..."`.
 * @returns {Map<string, string>} code -> a file that answers with it
 */
function serverCodes() {
  /** @type {Map<string, string>} */
  const codes = new Map();
  for (const file of rustFiles(SERVER)) {
    const source = readFileSync(file, 'utf8');
    for (const m of source.matchAll(/ApiError::(?:new|bad_request|unprocessable|forbidden|conflict)\s*\(/g)) {
      const code = /"([a-z0-9_]+)"/.exec(source.slice(m.index + m[0].length, m.index + m[0].length + 300));
      if (code) codes.set(code[1], file);
    }
    for (const m of source.matchAll(/\bcode:\s*"([a-z0-9_]+)"/g)) codes.set(m[1], file);
    // The fixed answers of error.rs: unauthenticated, not_found, rate_limited, busy, internal.
    for (const m of source.matchAll(/"(unauthenticated|not_found|rate_limited|busy|internal)"/g)) codes.set(m[1], file);
  }
  return codes;
}

test('the server answers with codes, and every one of them has plain words', () => {
  const codes = serverCodes();
  assert.ok(codes.size > 50, `found only ${codes.size} codes: the scan of the server's source is broken`);
  for (const must of ['password_rejected', 'email_taken', 'wrong_credentials', 'pairing_code_unknown', 'roster_refused', 'blocked']) {
    assert.ok(codes.has(must), `the scan missed ${must}`);
  }
  const missing = [...codes].filter(([code]) => !Object.hasOwn(ERROR_WORDS, code)).map(([code, file]) => `${code} (${file.slice(REPO.length)})`);
  assert.deepEqual(missing, [], `codes the screen has no words for; add them to web/js/words.js:\n${missing.join('\n')}`);
});

test('the words are sentences for a person: capitalised, ending with a full stop, no codes or rule names', () => {
  for (const [code, words] of Object.entries(ERROR_WORDS)) {
    assert.match(words, /^[A-Zp"]/, `${code}: starts with a capital (or pawpost)`);
    assert.match(words, /[.!]$/, `${code}: ends a sentence`);
    assert.doesNotMatch(words, /\b[a-z]+_[a-z_]+\b|\brule\b|roster|CSRF|JSON|HTTP|UUID|base64/i, `${code}: no internal words: ${words}`);
  }
});

test('an unknown code still gets words by its status, never the server sentence', () => {
  for (const status of [0, 400, 401, 403, 404, 409, 410, 413, 422, 429, 500, 502, 503]) {
    const words = errorWords('something_new', status);
    assert.ok(words.length > 20 && !words.includes('something_new'), `${status}: ${words}`);
  }
});

test('sign-up errors about one field are shown beside that field', () => {
  assert.equal(fieldFor('invalid_email'), 'email');
  assert.equal(fieldFor('email_taken'), 'email');
  assert.equal(fieldFor('invalid_name'), 'display_name');
  assert.equal(fieldFor('password_rejected'), 'password');
  assert.equal(fieldFor('wrong_credentials'), null, 'the same answer for a wrong address or password: under the form');
});

test('each password rule the server enforces gets its own plain sentence', () => {
  const domain = readFileSync(join(REPO, 'crates/pawpost-domain/src/password.rs'), 'utf8');
  const rules = [...domain.matchAll(/#\[error\("rule (\w+): ([^"]+)"\)\]/g)].map((m) => ({
    rule: m[1],
    // The sentence as the server words it, with numbers in place of its placeholders.
    said: `rule ${m[1]}: ${m[2].replace('{min}', '15').replace('{actual}', '9').replace('{max}', '256')}`,
  }));
  assert.deepEqual(rules.map((r) => r.rule).sort(), ['blocklist', 'max_length', 'min_length'], 'the rules the server words');
  const generic = passwordRejectedWords(new ApiError(422, 'password_rejected', 'rule unheard_of: no'));
  for (const { rule, said } of rules) {
    const err = new ApiError(422, 'password_rejected', said);
    const words = passwordRejectedWords(err);
    assert.notEqual(words, generic, `${rule} gets its own sentence`);
    assert.doesNotMatch(words, /\brule\b|_length|blocklist/, `${rule}: ${words}`);
    assert.notEqual(err.message, said, 'the error carries the plain words, not the server sentence');
    assert.equal(err.detail, said);
  }
  assert.match(passwordRejectedWords(new ApiError(422, 'password_rejected', rules.find((r) => r.rule === 'min_length')?.said ?? '')), /at least 15 characters and has 9/);
});
