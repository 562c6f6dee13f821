// A parent looks after the toy in a real Chromium with a real server and the simulated toy:
// the "Add toy" field gives way once the toy is paired; the toy speaks the same safety
// number the page shows, and the parent's "They match" stays recorded; the parent names
// the toy and Grandma, and the toy says "a message from Grandma" before playing hers;
// removing the toy asks first.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';

import { expectAccessible, makeVoiceWav, openBrowser, screenshot, startServer, startToy, statusSays, StoryFamily } from './harness.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let parent;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let gran;
/** @type {ReturnType<typeof startToy>} */
let toy;
/** @type {StoryFamily} */
let family;
let work = '';

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-toy-manage-'));
  const wav = makeVoiceWav(work, 'Hello sweetheart, it is grandma.');
  parent = await openBrowser(wav);
  gran = await openBrowser(wav);
  toy = startToy(server, join(work, 'toy'));
  family = new StoryFamily(server, {
    parent: { browser: parent, email: 'mum@example.com', name: 'Mum' },
    relative: { browser: gran, email: 'gran@example.com', name: 'Gran' },
    household: 'The Moreaus',
    child: 'Lou',
  });
});

beforeEach(() => {
  parent.errors.length = 0;
  gran.errors.length = 0;
});

after(async () => {
  toy?.stop();
  await parent?.close();
  await gran?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The family page with the toy's card. */
async function toyCard() {
  const page = parent.page;
  await page.goto(`${family.url}/family`);
  const item = page.locator('li.toy');
  await item.waitFor();
  return item;
}

test('after pairing, the "Add toy" field gives way to "Add another toy"', { timeout: 180000 }, async () => {
  await family.ensurePairedToy(toy);
  const item = await toyCard();
  const page = parent.page;
  assert.equal(await page.getByLabel('Code the toy speaks').isVisible(), false);
  await page.getByRole('button', { name: 'Add another toy' }).click();
  await page.getByLabel('Code the toy speaks').waitFor();
  await item.waitFor();
  await expectAccessible(page, 'family page with a paired toy');
  assert.deepEqual(parent.errors, []);
});

test('the toy speaks the safety number the page shows, and "They match" is recorded', { timeout: 180000 }, async () => {
  await family.ensurePairedToy(toy);
  const item = await toyCard();
  const shown = (await item.locator('.safety-digits').textContent()) ?? '';
  assert.match(shown, /^\d{3} \d{3}$/);
  const from = toy.output().length;
  toy.tell('long-press');
  const [, spoken] = await toy.says(/toy says: my safety number is (\d \d \d \d \d \d)/, { from });
  assert.equal(spoken.replace(/ /g, ''), shown.replace(/ /g, ''));

  // "They don't match" says what to do and records nothing.
  await item.getByRole('button', { name: "They don't match" }).click();
  await item.getByText("Don't use this toy for messages yet").waitFor();
  await expectAccessible(parent.page, 'safety number check');
  await item.getByRole('button', { name: 'They match' }).click();
  await statusSays(parent.page, 'Checked: this toy holds the keys your household signed.', server);
  // The check is the server's record, not this page's memory.
  const again = await toyCard();
  await again.locator('.safety-checked').getByText(`Safety number ${shown}: checked on`).waitFor();
  assert.equal(await again.getByRole('button', { name: 'They match' }).count(), 0);
  await screenshot(parent.page, 'toy-safety-number-checked');
  assert.deepEqual(parent.errors, []);
});

test('the parent names the toy and Grandma, and the toy says who a message is from', { timeout: 240000 }, async () => {
  await family.ensurePairedToy(toy);
  const item = await toyCard();
  await item.getByLabel("Toy's name").fill('Bruno');
  await item.getByLabel('Gran', { exact: true }).fill('Grandma');
  await item.getByRole('button', { name: 'Save names' }).click();
  await statusSays(parent.page, 'The names are saved, encrypted for your family and the toy.', server);
  const renamed = await toyCard();
  await renamed.getByRole('heading', { name: 'Bruno' }).waitFor();
  assert.equal(await renamed.getByLabel('Gran', { exact: true }).inputValue(), 'Grandma');
  await expectAccessible(parent.page, 'named toy');
  await screenshot(parent.page, 'toy-named');

  // Grandma records a message; the toy names her before playing it.
  const g = gran.page;
  await g.goto(family.url);
  await g.getByRole('heading', { name: 'Messages with Lou' }).waitFor();
  await g.getByRole('button', { name: 'Record' }).click();
  await g.waitForTimeout(2000);
  await g.getByRole('button', { name: 'Stop' }).click();
  await g.locator('.recorder[data-recorded]').waitFor();
  await g.getByRole('button', { name: 'Send to Lou' }).click();
  await g.locator('li.message.mine').first().locator('[data-state=delivered], [data-state=heard]').waitFor({ timeout: 30000 });
  const from = toy.output().length;
  toy.tell('press');
  const [announced] = await toy.says(/toy says: a message from Grandma/, { from, timeoutMs: 30000 });
  const [played] = await toy.says(/played message \S+ -> \S+\.ogg/, { from, timeoutMs: 30000 });
  const output = toy.output();
  assert.ok(output.indexOf(announced, from) < output.indexOf(played, from), 'the name comes before the message');
  assert.deepEqual(parent.errors, []);
  assert.deepEqual(gran.errors, []);
});

test('removing the toy asks first, then the toy leaves and the "Add toy" field is back', { timeout: 180000 }, async () => {
  await family.ensurePairedToy(toy);
  const item = await toyCard();
  const page = parent.page;
  const from = toy.output().length;
  await item.getByRole('button', { name: /^Remove .*…$/ }).click();
  await item.getByText('The toy will forget this family and can be set up again. Messages on it are deleted.').waitFor();
  await expectAccessible(page, 'remove toy confirmation');
  await item.getByRole('button', { name: 'Keep it' }).click();
  assert.equal(await page.locator('li.toy').count(), 1);
  await item.getByRole('button', { name: /^Remove .*…$/ }).click();
  await item.getByRole('button', { name: 'Remove the toy' }).click();
  await statusSays(page, 'The toy is removed. It forgets this family and can be set up again.', server);
  await toy.says(/toy says: I left my family\./, { from });
  await page.getByText('No toy yet.').waitFor();
  await page.getByLabel('Code the toy speaks').waitFor();
  assert.deepEqual(parent.errors, []);
});
