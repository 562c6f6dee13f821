// Pages that change while they are open, in a real Chromium, a real server and the
// simulated toy: grandma's "waiting for approval" page turns into her household the moment
// a parent approves her, the parent's family page shows a newcomer waiting, a message held
// by quiet hours says so to its sender, the parent's list says "played on the toy" and no
// longer "new", a reply once heard stays heard after a reload, a recording's length agrees
// with its player, and a blocked relative's open page switches to the notice. None of
// these pages is reloaded (a marker set on the page must survive), except where the story
// is the reload.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';

import { expectAccessible, makeVoiceWav, openBrowser, REPO, screenshot, signUp, startServer, startToy, StoryFamily } from './harness.js';

const REPLY = join(REPO, 'crates/pawpost-media/tests/fixtures/hello-mono-20ms.ogg');
/** Longer than the pages' fallback refresh while their live stream is open would allow by chance. */
const LIVE_WAIT_MS = 10000;

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
  work = mkdtempSync(join(tmpdir(), 'pawpost-live-story-'));
  const wav = makeVoiceWav(work, 'Hello little one, it is grandma. Sleep well, my darling.');
  parent = await openBrowser(wav);
  gran = await openBrowser(wav);
  toy = startToy(server, join(work, 'toy'));
  family = new StoryFamily(server, {
    parent: { browser: parent, email: 'dad@example.com', name: 'Dad' },
    relative: { browser: gran, email: 'grandma@example.com', name: 'Grandma Rosa' },
    household: 'The Riveras',
    child: 'Luz',
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

/**
 * Marks the page so that a reload (which forgets the mark) is noticed.
 * @param {import('playwright-core').Page} page
 */
const mark = (page) => page.evaluate(() => Object.assign(window, { pawpostNotReloaded: true }));
/** @param {import('playwright-core').Page} page */
const stillMarked = async (page) => assert.equal(await page.evaluate(() => /** @type {any} */ (window).pawpostNotReloaded), true, 'the page was reloaded');

/** A local time `minutes` from now as an <input type=time> value. */
function clock(minutes) {
  const d = new Date(Date.now() + minutes * 60000);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/**
 * Records about `ms` of the fake microphone on `page` and returns what the recorder says.
 * @param {import('playwright-core').Page} page
 * @param {number} ms
 */
async function record(page, ms) {
  await page.getByRole('button', { name: 'Record' }).click();
  await page.waitForTimeout(ms);
  await page.getByRole('button', { name: 'Stop' }).click();
  await page.locator('.recorder[data-recorded]').waitFor();
  return Number(await page.locator('.recorder').getAttribute('data-recorded'));
}

/**
 * The parent's settings: quiet hours on around now, or off.
 * @param {boolean} on
 */
async function quietHours(on) {
  const page = parent.page;
  await page.goto(`${family.url}/family`);
  const box = page.getByLabel('Quiet hours: the toy stays silent');
  if (on) {
    await box.check();
    await page.locator('#quiet-from').fill(clock(-60));
    await page.locator('#quiet-to').fill(clock(60));
  } else {
    await box.uncheck();
  }
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByRole('status').filter({ hasText: 'Settings saved.' }).waitFor({ timeout: 30000 });
}

test("grandma's waiting page turns into her household when she is approved, and the parent's family page shows her waiting", { timeout: 150000 }, async () => {
  await family.ensureHousehold();
  const p = parent.page;
  const g = gran.page;
  await p.goto(`${family.url}/family`);
  await p.getByRole('button', { name: 'Create invitation link' }).click();
  const invite = await p.getByLabel('Invitation link').inputValue();
  await mark(p);

  await g.goto(invite);
  await signUp(g, family.relative);
  await g.getByText('has to approve you').waitFor();
  // The parent's open family page shows her, waiting.
  const row = p.locator('li.member', { hasText: 'Grandma Rosa' });
  await row.getByRole('button', { name: /^Approve/ }).waitFor({ timeout: LIVE_WAIT_MS });
  await stillMarked(p);
  await expectAccessible(p, 'family page with a relative waiting');

  await g.goto(family.url);
  await g.getByText('has to approve you').waitFor();
  await mark(g);
  await row.getByRole('button', { name: /^Approve/ }).click();
  await p.getByRole('status').filter({ hasText: 'is approved' }).waitFor();
  // Her page, left open, becomes the household: messages and the recorder.
  await g.getByRole('button', { name: 'Record' }).waitFor({ timeout: LIVE_WAIT_MS });
  await g.getByRole('heading', { name: 'Messages with Luz' }).waitFor({ timeout: LIVE_WAIT_MS });
  await stillMarked(g);
  await screenshot(g, 'live-approved');
  await expectAccessible(g, 'household page right after the approval');
  assert.deepEqual(gran.errors, []);
  assert.deepEqual(parent.errors, []);
});

test('a recording says the length its player shows, and the list says the same', { timeout: 120000 }, async () => {
  await family.ensureFamily();
  const g = gran.page;
  await g.goto(family.url);
  const ms = await record(g, 4700);
  const said = /Recorded (\d+:\d\d)\./.exec((await g.locator('.rec-status').textContent()) ?? '')?.[1];
  const seconds = await g.locator('.rec-preview audio').evaluate(
    (a) =>
      new Promise((resolve) => {
        const el = /** @type {HTMLAudioElement} */ (a);
        const done = () => resolve(el.duration);
        if (el.readyState >= 1 && Number.isFinite(el.duration)) done();
        else el.addEventListener('loadedmetadata', done, { once: true });
      }),
  );
  const player = `${Math.floor(Number(seconds) / 60)}:${String(Math.floor(Number(seconds)) % 60).padStart(2, '0')}`;
  assert.equal(said, player, `the recorder says ${said} for ${ms} ms; its player ${seconds} s`);
  assert.ok(Math.abs(Number(seconds) * 1000 - ms) < 100, `player ${seconds} s, recorder ${ms} ms`);
  await g.getByRole('button', { name: /^Send to/ }).click();
  await g.getByRole('status').filter({ hasText: 'Sent.' }).waitFor();
  await g.locator('li.message.mine').first().getByText(`· ${said}`).waitFor();
});

test('a message held by quiet hours says so to its sender and to the parent, and "played on the toy" once the toy plays it', { timeout: 240000 }, async () => {
  await family.ensurePairedToy(toy);
  await quietHours(true);
  const g = gran.page;
  await g.goto(family.url);
  await g.getByRole('heading', { name: 'Messages with Luz' }).waitFor();
  await record(g, 2000);
  await g.getByRole('button', { name: /^Send to/ }).click();
  await g.getByRole('status').filter({ hasText: 'Sent.' }).waitFor();
  const mine = g.locator('li.message.mine').first();
  const id = await mine.getAttribute('data-message-id');
  await mark(g);
  const held = mine.locator('[data-state=held]');
  await held.waitFor({ timeout: LIVE_WAIT_MS });
  assert.match((await held.textContent()) ?? '', /^held for quiet hours until \d\d:\d\d$/);
  await screenshot(g, 'live-quiet-hours');
  await expectAccessible(g, 'a message held by quiet hours');
  // The toy agrees: a press during quiet hours plays nothing.
  const from = toy.output().length;
  toy.tell('press');
  await toy.says(/quiet time/, { from, timeoutMs: 15000 });
  await stillMarked(g);

  // The parent's list says the same of grandma's message, which is new to them.
  const p = parent.page;
  await p.goto(family.url);
  const theirs = p.locator(`li.message[data-message-id="${id}"]`);
  await theirs.locator('[data-state=held]').waitFor();
  await theirs.locator('.badge').waitFor();

  // Quiet hours end: the toy plays it; both pages say so without a reload, and it is no
  // longer new to the parent.
  await quietHours(false);
  await p.goto(family.url);
  await mark(p);
  // The toy may take a moment to get the new settings: until then it still says shh.
  for (let tries = 0; ; tries++) {
    const from = toy.output().length;
    toy.tell('press');
    const [said] = await toy.says(/played message|quiet time/, { from, timeoutMs: 30000 });
    if (said.startsWith('played')) break;
    assert.ok(tries < 20, 'the toy stayed in quiet hours after they were switched off');
    await p.waitForTimeout(500);
  }
  await mine.locator('[data-state=heard]').getByText('played on the toy').waitFor({ timeout: LIVE_WAIT_MS });
  await theirs.locator('[data-state=heard]').getByText('played on the toy').waitFor({ timeout: LIVE_WAIT_MS });
  assert.equal(await theirs.locator('.badge').count(), 0, 'a message the toy played is not "new" to the parent');
  await stillMarked(p);
  await stillMarked(g);
  await expectAccessible(p, 'the parent sees "played on the toy"');
});

test('a reply, once heard, is no longer new: one player, and still heard after a reload', { timeout: 180000 }, async () => {
  await family.ensurePairedToy(toy);
  const g = gran.page;
  await g.goto(family.url);
  await g.getByRole('heading', { name: 'Messages with Luz' }).waitFor();
  await mark(g);
  const from = toy.output().length;
  toy.tell(`record ${REPLY}`);
  await toy.says(/server has recording/, { from, timeoutMs: 30000 });
  const reply = g.locator('li.message.unread', { hasText: 'Luz (toy)' }).first();
  await reply.waitFor({ timeout: LIVE_WAIT_MS });
  await g.getByText('1 new message.').waitFor();
  await stillMarked(g);
  await expectAccessible(g, 'a new reply');
  const id = await reply.getAttribute('data-message-id');
  const item = g.locator(`li.message[data-message-id="${id}"]`);
  await item.getByRole('button', { name: /^Play/ }).click();
  await item.locator('audio').waitFor();
  await g.getByText('1 new message.').waitFor({ state: 'detached' });
  // Past a refresh or two, still one player and nothing new.
  await g.waitForTimeout(5000);
  assert.equal(await g.locator('audio').count(), 1, 'one player');
  assert.equal(await item.getByRole('button', { name: /^Play/ }).isVisible(), false, 'the player replaces the Play button');
  assert.equal(await g.locator('li.message.unread').count(), 0);

  await g.reload();
  await g.getByRole('heading', { name: 'Messages with Luz' }).waitFor();
  await g.locator(`li.message[data-message-id="${id}"]`).waitFor();
  assert.equal(await g.locator('li.message.unread').count(), 0, 'heard stays heard after a reload');
  assert.equal(await g.getByText(/new message/).count(), 0);
  // And on the household list.
  await g.goto(server.url);
  await g.getByRole('link', { name: 'The Riveras' }).waitFor();
  assert.equal(await g.locator('.badge:not([hidden])').count(), 0, 'no "new" badge on the household list');
  assert.deepEqual(gran.errors, []);
});

test("a blocked relative's open page switches to the notice at once", { timeout: 120000 }, async () => {
  await family.ensureFamily();
  const g = gran.page;
  await g.goto(family.url);
  await g.getByRole('button', { name: 'Record' }).waitFor();
  await mark(g);
  const p = parent.page;
  await p.goto(`${family.url}/family`);
  const row = p.locator('li.member', { hasText: 'Grandma Rosa' });
  await row.getByRole('button', { name: /^Block/ }).click();
  await row.getByRole('button', { name: /^Yes, block/ }).click();
  await p.getByRole('status').filter({ hasText: 'is blocked' }).waitFor();
  await g.getByText('A parent of this household has blocked you').waitFor({ timeout: LIVE_WAIT_MS });
  assert.equal(await g.getByRole('button', { name: 'Record' }).count(), 0, 'the recorder is gone');
  await stillMarked(g);
  await expectAccessible(g, 'the blocked notice');
});

test('the household list shows at once that a parent lifted the block', { timeout: 120000 }, async () => {
  await family.ensureHousehold();
  const g = gran.page;
  const p = parent.page;
  await p.goto(`${family.url}/family`);
  const row = p.locator('li.member', { hasText: 'Grandma Rosa' });
  const unblock = row.getByRole('button', { name: /^Unblock/ });
  await row.waitFor();
  if (!(await unblock.isVisible())) {
    await row.getByRole('button', { name: /^Block/ }).click();
    await row.getByRole('button', { name: /^Yes, block/ }).click();
    await unblock.waitFor();
  }
  await g.goto(server.url);
  const blocked = g.locator('ul.households').getByText('a parent has blocked you');
  await blocked.waitFor();
  await mark(g);
  await unblock.click();
  await p.getByRole('status').filter({ hasText: 'is unblocked' }).waitFor();
  await blocked.waitFor({ state: 'detached', timeout: LIVE_WAIT_MS });
  await stillMarked(g);
  await expectAccessible(g, 'the household list after the block was lifted');
});
