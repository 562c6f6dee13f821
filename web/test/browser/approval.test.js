// Parent approval in a real Chromium, a real server and the simulated toy: with "a parent
// approves each message before the toy plays it" on, the toy holds a grandparent's message
// until a parent clicks "Approve for the toy" (a signature by the parent's device that the
// toy checks against the roster), then plays it on a paw press.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';

import { apiGet, makeVoiceWav, openBrowser, screenshot, startServer, startToy, StoryFamily } from './harness.js';

const APPROVAL = 'A parent approves each message before the toy plays it';

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
// The grandparent's message, once she sent it.
let messageId = '';

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-approval-story-'));
  const wav = makeVoiceWav(work, 'Good night my darling, granny loves you.');
  parent = await openBrowser(wav);
  gran = await openBrowser(wav);
  toy = startToy(server, join(work, 'toy'));
  family = new StoryFamily(server, {
    parent: { browser: parent, email: 'dad@example.com', name: 'Dad' },
    relative: { browser: gran, email: 'granny@example.com', name: 'Granny Sue' },
    household: 'The Nakamuras',
    child: 'Yuki',
  });
});

// Each story answers for the page errors of its own steps only.
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

/** The version of the household's signed roster on the server. */
async function rosterVersion() {
  return Number((await apiGet(parent.page, server, `/api/v1/households/${family.householdId}/roster`))?.version);
}

/** The parent turns approval on: a new signed roster, which the toy takes. */
async function turnOnApproval() {
  const page = parent.page;
  await page.goto(`${family.url}/family`);
  const box = page.getByLabel(APPROVAL);
  await box.waitFor();
  const before = await rosterVersion();
  await box.check();
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByRole('status').filter({ hasText: 'Settings saved.' }).waitFor();
  assert.ok(await box.isChecked());
  const version = await rosterVersion();
  assert.ok(version > before, `saving settings left the roster at version ${before}`);
  await toy.hasRoster(version);
}

/** A paired toy whose roster says a parent approves each message. */
async function ensureApprovalOn() {
  await family.ensurePairedToy(toy);
  const page = parent.page;
  await page.goto(`${family.url}/family`);
  if (await page.getByLabel(APPROVAL).isChecked()) await toy.hasRoster(await rosterVersion());
  else await turnOnApproval();
}

/** The grandparent records and sends a message, which the toy accepts ("delivered"). */
async function sendFromGran() {
  const g = gran.page;
  await g.goto(family.url);
  await g.getByRole('heading', { name: 'Messages with Yuki' }).waitFor();
  await g.getByRole('button', { name: 'Record' }).click();
  await g.waitForTimeout(2000);
  await g.getByRole('button', { name: 'Stop' }).click();
  await g.locator('.recorder[data-recorded]').waitFor();
  await g.getByRole('button', { name: 'Send to Yuki' }).click();
  await g.getByRole('status').filter({ hasText: 'Sent.' }).waitFor();
  messageId = /** @type {string} */ (await g.locator('li.message.mine').first().getAttribute('data-message-id'));
  await g.locator(`li.message[data-message-id="${messageId}"] [data-state=delivered]`).waitFor({ timeout: 30000 });
}

/** A grandparent's message the toy holds for a parent's approval. */
async function ensureHeldMessage() {
  await ensureApprovalOn();
  if (!messageId) await sendFromGran();
}

test('a parent, an approved grandparent and a paired toy', { timeout: 120000 }, async () => {
  await family.ensurePairedToy(toy);
  assert.deepEqual(parent.errors, []);
  assert.deepEqual(gran.errors, []);
});

test('the parent turns on approval: a new signed roster reaches the toy', { timeout: 120000 }, async () => {
  await family.ensurePairedToy(toy);
  await turnOnApproval();
  // Only voice is ever addressed to the toy: the child's name, resealed after the roster
  // grew, did not reach it.
  assert.doesNotMatch(toy.output(), /dropped:/);
  assert.deepEqual(parent.errors, []);
});

test('the toy holds the grandparent\'s message, shown as waiting for a parent\'s approval', { timeout: 180000 }, async () => {
  await ensureApprovalOn();
  await sendFromGran();
  const mine = gran.page.locator(`li.message[data-message-id="${messageId}"]`);
  await mine.locator('[data-approval=waiting]').filter({ hasText: "waiting for a parent's approval" }).waitFor();
  // A relative cannot approve.
  assert.equal(await mine.getByRole('button', { name: /^Approve for the toy/ }).count(), 0);
  // The toy accepted it ("delivered") but holds it: queued, heart not blinking.
  const status = await toy.status();
  assert.match(status, /queued messages: 1/);
  assert.match(status, /heart: off/);
  assert.doesNotMatch(toy.output(), /played message/);
  await screenshot(gran.page, 'approval-waiting');
  assert.deepEqual(gran.errors, []);
});

test('the parent clicks "Approve for the toy"; the toy plays it on a press, and it shows as heard', { timeout: 240000 }, async () => {
  await ensureHeldMessage();
  const page = parent.page;
  await page.goto(family.url);
  const item = page.locator(`li.message[data-message-id="${messageId}"]`);
  await item.locator('[data-approval=waiting]').waitFor();
  const from = toy.output().length;
  await item.getByRole('button', { name: /^Approve for the toy/ }).click();
  await item.locator('[data-approval=approved]').filter({ hasText: 'approved' }).waitFor();
  await page.getByRole('status').filter({ hasText: 'is approved: the toy can play it now' }).waitFor();
  assert.equal(await item.getByRole('button', { name: /^Approve for the toy/ }).count(), 0);
  await screenshot(page, 'approval-approved');
  // The toy checked the parent's signature and released the message: its heart blinks.
  await toy.says(/heart: blink/, { from });
  assert.doesNotMatch(toy.output().slice(from), /approval for message .* refused/);
  // Still approved after a reload (this browser remembers what it approved).
  await page.reload();
  await item.locator('[data-approval=approved]').waitFor();

  toy.tell('press');
  const [, played] = await toy.says(/played message (\S+) -> \S+\.ogg/, { from, timeoutMs: 30000 });
  assert.equal(played, messageId);
  // The grandparent's page, open on the messages since she sent it, shows it as heard.
  if (!(await gran.page.getByRole('heading', { name: 'Messages with Yuki' }).isVisible())) await gran.page.goto(family.url);
  await gran.page.locator(`li.message[data-message-id="${messageId}"] [data-state=heard]`).waitFor({ timeout: 30000 });
  // Once the toy played it, no approval is pending any more.
  await page.waitForFunction((id) => !document.querySelector(`li.message[data-message-id="${id}"] [data-approval]`), messageId, { timeout: 15000 });
  assert.doesNotMatch(toy.output(), /dropped:/);
  assert.deepEqual(parent.errors, []);
  assert.deepEqual(gran.errors, []);
});
