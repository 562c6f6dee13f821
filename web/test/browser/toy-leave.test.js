// A toy leaves its family for real, in a real Chromium with a real server and the simulated
// toy: a parent removes it from the family page after a plain warning, this browser signs
// its goodbye, the toy says it left and forgets the family, and it can be set up again.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';

import { makeVoiceWav, openBrowser, screenshot, startServer, startToy, statusSays, StoryFamily } from './harness.js';

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
  work = mkdtempSync(join(tmpdir(), 'pawpost-toy-leave-'));
  const wav = makeVoiceWav(work, 'Hello from the family.');
  parent = await openBrowser(wav);
  gran = await openBrowser(wav);
  toy = startToy(server, join(work, 'toy'));
  family = new StoryFamily(server, {
    parent: { browser: parent, email: 'mum@example.com', name: 'Mum' },
    relative: { browser: gran, email: 'gran@example.com', name: 'Gran' },
    household: 'The Lindqvists',
    child: 'Elsa',
  });
});

beforeEach(() => {
  parent.errors.length = 0;
});

after(async () => {
  toy?.stop();
  await parent?.close();
  await gran?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('a parent removes the toy from the family page and the toy says it left', { timeout: 180000 }, async () => {
  await family.ensurePairedToy(toy);
  const page = parent.page;
  await page.goto(`${family.url}/family`);
  const item = page.locator('li.toy');
  await item.waitFor();
  const from = toy.output().length;

  await item.getByRole('button', { name: /^Remove .*…$/ }).click();
  const warning = item.getByText('The toy will forget this family and can be set up again. Messages on it are deleted.');
  await warning.waitFor();
  // Changing one's mind changes nothing.
  await item.getByRole('button', { name: 'Keep it' }).click();
  assert.equal(await warning.isVisible(), false);
  await item.getByRole('button', { name: /^Remove .*…$/ }).click();
  await item.getByRole('button', { name: 'Remove the toy' }).click();

  await statusSays(page, 'The toy is removed. It forgets this family and can be set up again.', server);
  await toy.says(/toy says: I left my family\. I can be set up with a family again\./, { from });
  await page.getByText('No toy yet.').waitFor();
  const status = await toy.status();
  assert.match(status, /household: none \(not paired\)/, status);
  await screenshot(page, 'toy-removed');
  assert.deepEqual(parent.errors, []);
});

test('deleting the household from the family page makes the toy say it left', { timeout: 180000 }, async () => {
  await family.ensurePairedToy(toy);
  const page = parent.page;
  await page.goto(`${family.url}/family`);
  await page.locator('li.toy').waitFor();
  const from = toy.output().length;
  await page.getByRole('button', { name: 'Delete this household…' }).click();
  await page.getByLabel("Type the household's name to confirm").fill('The Lindqvists');
  await page.getByRole('button', { name: 'Delete this household', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'The Lindqvists is deleted' }).waitFor();
  family.householdId = '';
  await toy.says(/toy says: I left my family\. I can be set up with a family again\./, { from });
  const status = await toy.status();
  assert.match(status, /household: none \(not paired\)/, status);
  assert.deepEqual(parent.errors, []);
});
