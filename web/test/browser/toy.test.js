// The toy's stories in a real Chromium, a real server and the simulated toy: pairing by the
// spoken code, a grandparent's message played by the toy and shown as heard, and the
// child's reply heard in the browser.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';

import { readOggOpus } from '../../js/media/ogg.js';
import { makeVoiceWav, openBrowser, REPO, screenshot, startServer, startToy, StoryFamily } from './harness.js';

const REPLY = join(REPO, 'crates/pawpost-media/tests/fixtures/hello-mono-20ms.ogg');

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

/**
 * Waits for a line of the toy's output matching `re`.
 * @param {RegExp} re
 * @param {number} [timeoutMs]
 */
const toySays = (re, timeoutMs) => toy.says(re, { timeoutMs });
/** @param {string} line */
const tell = (line) => toy.tell(line);

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-toy-story-'));
  const wav = makeVoiceWav(work, 'Hello little one, grandpa here. Sleep well.');
  parent = await openBrowser(wav);
  gran = await openBrowser(wav);
  toy = startToy(server, join(work, 'toy'));
  family = new StoryFamily(server, {
    parent: { browser: parent, email: 'mum@example.com', name: 'Mum' },
    relative: { browser: gran, email: 'grandpa@example.com', name: 'Grandpa Joe' },
    household: 'The Okafors',
    child: 'Ada',
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

// Each story sets up what it needs (family.ensure…), whatever the stories before it left.
test('a parent and an approved grandparent share a household', { timeout: 90000 }, async () => {
  await family.ensureFamily();
  assert.deepEqual(parent.errors, []);
  assert.deepEqual(gran.errors, []);
});

test('the parent pairs the toy by the code it speaks and sees its fingerprint and online state', { timeout: 150000 }, async () => {
  await family.ensurePairedToy(toy);
  const page = parent.page;
  tell('status');
  const [, fp] = await toySays(/fingerprint: ([\d ]+\d)/);
  await page.goto(`${family.url}/family`);
  const item = page.locator('li.toy');
  await item.getByText(fp).waitFor();
  await item.locator('.online-yes').waitFor({ timeout: 20000 }).catch(async () => {
    await page.reload();
    await item.locator('.online-yes').waitFor();
  });
  await screenshot(page, 'toy-paired');
  await page.getByRole('link', { name: 'Security' }).click();
  await page.locator('ul.toys').getByText(fp).waitFor();
});

let sentMs = 0;

test('the toy plays the grandparent\'s message, and the grandparent sees "heard"', { timeout: 180000 }, async () => {
  await family.ensurePairedToy(toy);
  const g = gran.page;
  await g.goto(family.url);
  await g.getByRole('heading', { name: 'Messages with Ada' }).waitFor();
  await g.getByRole('button', { name: 'Record' }).click();
  await g.waitForTimeout(2500);
  await g.getByRole('button', { name: 'Stop' }).click();
  await g.locator('.recorder[data-recorded]').waitFor();
  sentMs = Number(await g.locator('.recorder').getAttribute('data-recorded'));
  await g.getByRole('button', { name: 'Send to Ada' }).click();
  await g.getByRole('status').filter({ hasText: 'Sent.' }).waitFor();
  const mine = g.locator('li.message.mine').first();
  await mine.locator('[data-state=delivered], [data-state=heard]').waitFor({ timeout: 30000 });

  tell('press');
  const [, , path] = await toySays(/played message (\S+) -> (\S+\.ogg)/, 30000);
  const info = readOggOpus(new Uint8Array(readFileSync(path)));
  assert.ok(Math.abs(info.durationMs - sentMs) <= 20, `toy played ${info.durationMs} ms of ${sentMs} ms`);
  assert.ok(sentMs > 1500 && sentMs < 5000, `recorded ${sentMs} ms`);
  await mine.locator('[data-state=heard]').waitFor({ timeout: 30000 });
  await screenshot(g, 'heard');
});

test('the toy records a reply and the grandparent hears it', { timeout: 180000 }, async () => {
  await family.ensurePairedToy(toy);
  const g = gran.page;
  // The grandparent's page, open on the household's messages, shows the reply as it comes.
  const messages = g.getByRole('heading', { name: 'Messages with Ada' });
  if (!(await messages.isVisible())) await g.goto(family.url);
  await messages.waitFor();
  const from = toy.output().length;
  tell(`record ${REPLY}`);
  await toy.says(/server has recording/, { from, timeoutMs: 30000 });
  const reply = g.locator('li.message.unread', { hasText: 'Ada (toy)' }).first();
  await reply.waitFor({ timeout: 30000 });
  const id = await reply.getAttribute('data-message-id');
  const item = g.locator(`li.message[data-message-id="${id}"]`);
  await item.getByRole('button', { name: /^Play/ }).click();
  const duration = await item.locator('audio').evaluate(
    (a) => new Promise((resolve) => {
      const el = /** @type {HTMLAudioElement} */ (a);
      if (el.readyState >= 1) resolve(el.duration);
      el.onloadedmetadata = () => resolve(el.duration);
      el.onerror = () => resolve(-1);
    }),
  );
  const expected = readOggOpus(new Uint8Array(readFileSync(REPLY))).durationMs;
  assert.ok(Math.abs(Number(duration) * 1000 - expected) < 300, `plays ${duration} s of ${expected} ms`);
  // The child's name and the roster changes were never addressed to the toy: it dropped nothing.
  assert.doesNotMatch(toy.output(), /dropped:/);
  assert.deepEqual(gran.errors, []);
  assert.deepEqual(parent.errors, []);
});
