// The names record the parents' app seals for the toy: the text format the toy parses
// (docs/TOY-PROTOCOL.md, "Names"; `parse_names` in pawpost-toy).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MAX_SPOKEN_NAME_BYTES, namesText, parseNamesText } from '../js/views/toy-card.js';

const GRAN = '0a000000-0000-4000-8000-0000000000aa';

test('the record is the header, the toy line and one member line per name, tab separated', () => {
  const text = namesText({ toyName: 'Bruno', members: new Map([[GRAN, 'Grandma'], ['0b000000-0000-4000-8000-0000000000bb', '']]) });
  assert.equal(text, `pawpost-names/1\ntoy\tBruno\nmember\t${GRAN}\tGrandma\n`);
  const back = parseNamesText(text);
  assert.equal(back?.toyName, 'Bruno');
  assert.deepEqual([...(back?.members ?? [])], [[GRAN, 'Grandma']]);
});

test('text that is not a names record is not read as one', () => {
  assert.equal(parseNamesText('Grandma'), null);
  assert.equal(MAX_SPOKEN_NAME_BYTES, 48);
});
