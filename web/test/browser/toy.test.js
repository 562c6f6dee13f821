// The toy's stories in a real Chromium, a real server and the simulated toy: pairing by the
// spoken code, a grandparent's message played by the toy and shown as heard, and the
// child's reply heard in the browser.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { readOggOpus } from '../../js/media/ogg.js';
import { BINARY, makeVoiceWav, openBrowser, REPO, screenshot, signUp, startServer, statusSays } from './harness.js';

const REPLY = join(REPO, 'crates/pawpost-media/tests/fixtures/hello-mono-20ms.ogg');

// Runs once the binary has the toy simulator (and so the pairing API it talks to).
const skip =
  existsSync(BINARY) && spawnSync(BINARY, ['toy', '--help'], { timeout: 10000 }).status !== 0
    ? 'this pawpost build has no toy simulator yet'
    : false;

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let parent;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let gran;
/** @type {import('node:child_process').ChildProcessWithoutNullStreams} */
let toy;
let work = '';
let toyOut = '';
let householdUrl = '';

/**
 * Waits for a line of the toy's output matching `re` (after `from` characters).
 * @param {RegExp} re
 * @param {number} [timeoutMs]
 * @returns {Promise<RegExpExecArray>}
 */
async function toySays(re, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = re.exec(toyOut);
    if (m) return m;
    if (Date.now() > end) throw new Error(`the toy never printed ${re}; it printed:\n${toyOut}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
/** @param {string} line */
const tell = (line) => toy.stdin.write(`${line}\n`);

before(async () => {
  if (skip) return;
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-toy-story-'));
  const wav = makeVoiceWav(work, 'Hello little one, grandpa here. Sleep well.');
  parent = await openBrowser(wav);
  gran = await openBrowser(wav);
  toy = spawn(BINARY, ['toy', '--server', server.url, '--state-dir', join(work, 'toy')], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  toy.stdout.on('data', (d) => (toyOut += d));
  toy.stderr.on('data', (d) => (toyOut += d));
});

after(async () => {
  if (toy && toy.exitCode === null) toy.kill('SIGKILL');
  await parent?.close();
  await gran?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('a parent and an approved grandparent share a household', { timeout: 90000, skip }, async () => {
  const page = parent.page;
  await page.goto(`${server.url}/signup`);
  await signUp(page, { email: 'mum@example.com', name: 'Mum' });
  await page.getByLabel('Household name').fill('The Okafors');
  await page.getByLabel("Your child's name").fill('Ada');
  await page.getByRole('button', { name: 'Create household' }).click();
  await page.getByRole('heading', { name: 'Messages with Ada' }).waitFor();
  householdUrl = page.url();
  await page.goto(`${householdUrl}/family`);
  await page.getByRole('button', { name: 'Create invitation link' }).click();
  const invite = await page.getByLabel('Invitation link').inputValue();
  await gran.page.goto(invite);
  await signUp(gran.page, { email: 'grandpa@example.com', name: 'Grandpa Joe' });
  await gran.page.getByText('has to approve you').waitFor();
  await page.reload();
  await page.locator('li.member', { hasText: 'Grandpa Joe' }).getByRole('button', { name: /^Approve/ }).click();
  await page.getByRole('status').filter({ hasText: 'is approved' }).waitFor();
});

test('the parent pairs the toy by the code it speaks and sees its fingerprint and online state', { timeout: 90000, skip }, async () => {
  tell('long-press');
  const [, spoken] = await toySays(/toy says: (\d \d \d \d \d \d)/);
  const page = parent.page;
  await page.getByLabel('Code the toy speaks').fill(spoken);
  await page.getByRole('button', { name: 'Add toy' }).click();
  await statusSays(page, 'The toy is paired.', server);
  await toySays(/paired with household/);
  tell('status');
  const [, fp] = await toySays(/fingerprint: ([\d ]+\d)/);
  await page.reload();
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

test('the toy plays the grandparent\'s message, and the grandparent sees "heard"', { timeout: 120000, skip }, async () => {
  const g = gran.page;
  await g.reload();
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

test('the toy records a reply and the grandparent hears it', { timeout: 120000, skip }, async () => {
  tell(`record ${REPLY}`);
  await toySays(/server has recording/, 30000);
  const g = gran.page;
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
  assert.deepEqual(gran.errors, []);
  assert.deepEqual(parent.errors, []);
});
