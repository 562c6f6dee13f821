// The message catalogues: German and Spanish say everything English says, with the same
// placeholders, and a plural sentence has a form for each plural category of its language.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { chooseLanguage, LANGUAGES } from '../js/i18n.js';
import en from '../js/locales/en.js';
import de from '../js/locales/de.js';
import es from '../js/locales/es.js';

/** @type {Record<string, Record<string, any>>} */
const OTHERS = { de, es };

/**
 * The forms of a catalogue entry: the sentence, or its plural forms by category.
 * @param {string | Record<string, string>} text
 * @returns {[string, string][]}
 */
const forms = (text) => (typeof text === 'string' ? [['', text]] : Object.entries(text));

/** @param {string} text */
const placeholders = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test('German and Spanish have exactly the keys of English: none missing, none extra', () => {
  const keys = Object.keys(en).sort();
  for (const [lang, catalogue] of Object.entries(OTHERS)) {
    const theirs = Object.keys(catalogue).sort();
    assert.deepEqual(
      keys.filter((k) => !Object.hasOwn(catalogue, k)),
      [],
      `${lang}.js misses these keys of en.js`,
    );
    assert.deepEqual(
      theirs.filter((k) => !Object.hasOwn(en, k)),
      [],
      `${lang}.js has keys en.js does not`,
    );
  }
});

test('every translation keeps the placeholders of the English sentence', () => {
  for (const [lang, catalogue] of Object.entries(OTHERS)) {
    for (const [key, text] of Object.entries(en)) {
      const wanted = [...new Set(forms(text).flatMap(([, s]) => placeholders(s)))].sort();
      for (const [form, s] of forms(catalogue[key])) {
        assert.deepEqual([...new Set(placeholders(s))].sort(), wanted, `${lang}.js ${JSON.stringify(key)}${form ? ` (${form})` : ''}: ${JSON.stringify(s)}`);
      }
    }
  }
});

test('a plural sentence has every plural category its language uses, and only plural sentences are plural', () => {
  for (const [lang, catalogue] of Object.entries({ en, ...OTHERS })) {
    const categories = new Intl.PluralRules(lang).resolvedOptions().pluralCategories;
    for (const [key, text] of Object.entries(catalogue)) {
      const englishIsPlural = typeof (/** @type {any} */ (en)[key]) !== 'string';
      assert.equal(typeof text !== 'string', englishIsPlural, `${lang}.js ${JSON.stringify(key)}: plural in one catalogue, not the other`);
      if (!englishIsPlural) continue;
      assert.ok(key.includes('{count}'), `a plural key names its {count}: ${key}`);
      for (const category of categories) {
        // Categories a count of messages never reaches in practice (Spanish "many" is for
        // millions) still need their words: Intl picks them for such numbers.
        assert.equal(typeof text[category], 'string', `${lang}.js ${JSON.stringify(key)} lacks the plural form "${category}"`);
      }
    }
  }
});

test('no catalogue entry is empty, and the English entries are their keys', () => {
  for (const [lang, catalogue] of Object.entries({ en, ...OTHERS })) {
    for (const [key, text] of Object.entries(catalogue)) {
      for (const [, s] of forms(text)) assert.ok(s.trim().length > 0 || key.trim().length === 0, `${lang}.js ${JSON.stringify(key)} is empty`);
    }
  }
  for (const [key, text] of Object.entries(en)) {
    if (typeof text === 'string') assert.equal(text, key);
    else assert.equal(text.other, key);
  }
});

test("the language is the chosen one, else the browser's first that pawpost speaks, else English", () => {
  assert.deepEqual(Object.keys(LANGUAGES), ['en', 'de', 'es']);
  assert.equal(chooseLanguage(null, ['de-DE', 'en-US']), 'de');
  assert.equal(chooseLanguage(null, ['fr-FR', 'es-MX', 'de']), 'es');
  assert.equal(chooseLanguage(null, ['fr-FR', 'it']), 'en');
  assert.equal(chooseLanguage(null, []), 'en');
  assert.equal(chooseLanguage('es', ['de-DE']), 'es');
  // A stored choice pawpost no longer speaks falls back to the browser's languages.
  assert.equal(chooseLanguage('xx', ['de-AT']), 'de');
});
