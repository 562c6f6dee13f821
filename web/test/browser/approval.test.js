// Parent approval in a real Chromium, a real server and the simulated toy: with "a parent
// approves each message before the toy plays it" on, the toy holds a grandparent's message
// until a parent clicks "Approve for the toy" (a signature by the parent's device that the
// toy checks against the roster), then plays it on a paw press.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { BINARY, makeVoiceWav, openBrowser, screenshot, signUp, startServer, statusSays } from './harness.js';

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
 * Waits for the toy to print a line matching `re` after output position `from`.
 * @param {RegExp} re
 * @param {{ from?: number, timeoutMs?: number }} [options]
 * @returns {Promise<RegExpExecArray>}
 */
async function toySays(re, options = {}) {
  const end = Date.now() + (options.timeoutMs ?? 20000);
  for (;;) {
    const m = re.exec(toyOut.slice(options.from ?? 0));
    if (m) return m;
    if (Date.now() > end) throw new Error(`the toy never printed ${re}; it printed:\n${toyOut}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
/** @param {string} line */
const tell = (line) => toy.stdin.write(`${line}\n`);

/** Asks the toy for its status and returns the lines it printed. */
async function toyStatus() {
  const from = toyOut.length;
  tell('status');
  await toySays(/connection: .*\n/, { from });
  return toyOut.slice(from);
}

before(async () => {
  if (skip) return;
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-approval-story-'));
  const wav = makeVoiceWav(work, 'Good night my darling, granny loves you.');
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

test('a parent, an approved grandparent and a paired toy', { timeout: 120000, skip }, async () => {
  const page = parent.page;
  await page.goto(`${server.url}/signup`);
  await signUp(page, { email: 'dad@example.com', name: 'Dad' });
  await page.getByLabel('Household name').fill('The Nakamuras');
  await page.getByLabel("Your child's name").fill('Yuki');
  await page.getByRole('button', { name: 'Create household' }).click();
  await page.getByRole('heading', { name: 'Messages with Yuki' }).waitFor();
  householdUrl = page.url();
  await page.goto(`${householdUrl}/family`);
  await page.getByRole('button', { name: 'Create invitation link' }).click();
  const invite = await page.getByLabel('Invitation link').inputValue();
  await gran.page.goto(invite);
  await signUp(gran.page, { email: 'granny@example.com', name: 'Granny Sue' });
  await gran.page.getByText('has to approve you').waitFor();
  await page.reload();
  await page.locator('li.member', { hasText: 'Granny Sue' }).getByRole('button', { name: /^Approve/ }).click();
  await page.getByRole('status').filter({ hasText: 'is approved' }).waitFor();

  tell('long-press');
  const [, spoken] = await toySays(/toy says: (\d \d \d \d \d \d)/);
  await page.getByLabel('Code the toy speaks').fill(spoken);
  await page.getByRole('button', { name: 'Add toy' }).click();
  await statusSays(page, 'The toy is paired.', server);
  await toySays(/paired with household/);
});

test('the parent turns on approval: a new signed roster reaches the toy', { timeout: 60000, skip }, async () => {
  const page = parent.page;
  await page.goto(`${householdUrl}/family`);
  const before = Number((await toyStatus()).match(/roster version: (\d+)/)?.[1]);
  await page.getByLabel('A parent approves each message before the toy plays it').check();
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByRole('status').filter({ hasText: 'Settings saved.' }).waitFor();
  assert.ok(await page.getByLabel('A parent approves each message before the toy plays it').isChecked());
  // The toy takes the new roster (pushed while it is connected).
  const end = Date.now() + 20000;
  for (;;) {
    const version = Number((await toyStatus()).match(/roster version: (\d+)/)?.[1]);
    if (version > before) break;
    assert.ok(Date.now() < end, `the toy stayed at roster version ${version}`);
    await new Promise((r) => setTimeout(r, 300));
  }
});

let messageId = '';

test('the toy holds the grandparent\'s message, shown as waiting for a parent\'s approval', { timeout: 120000, skip }, async () => {
  const g = gran.page;
  await g.goto(householdUrl);
  await g.getByRole('heading', { name: 'Messages with Yuki' }).waitFor();
  await g.getByRole('button', { name: 'Record' }).click();
  await g.waitForTimeout(2000);
  await g.getByRole('button', { name: 'Stop' }).click();
  await g.locator('.recorder[data-recorded]').waitFor();
  await g.getByRole('button', { name: 'Send to Yuki' }).click();
  await g.getByRole('status').filter({ hasText: 'Sent.' }).waitFor();
  const mine = g.locator('li.message.mine').first();
  messageId = /** @type {string} */ (await mine.getAttribute('data-message-id'));
  await mine.locator('[data-approval=waiting]').filter({ hasText: "waiting for a parent's approval" }).waitFor();
  // A relative cannot approve.
  assert.equal(await mine.getByRole('button', { name: /^Approve for the toy/ }).count(), 0);
  // The toy accepted it ("delivered") but holds it: queued, heart not blinking.
  await mine.locator('[data-state=delivered]').waitFor({ timeout: 30000 });
  const status = await toyStatus();
  assert.match(status, /queued messages: 1/);
  assert.match(status, /heart: off/);
  assert.doesNotMatch(toyOut, /played message/);
  await screenshot(g, 'approval-waiting');
});

test('the parent clicks "Approve for the toy"; the toy plays it on a press, and it shows as heard', { timeout: 120000, skip }, async () => {
  const page = parent.page;
  await page.goto(householdUrl);
  const item = page.locator(`li.message[data-message-id="${messageId}"]`);
  await item.locator('[data-approval=waiting]').waitFor();
  const from = toyOut.length;
  await item.getByRole('button', { name: /^Approve for the toy/ }).click();
  await item.locator('[data-approval=approved]').filter({ hasText: 'approved' }).waitFor();
  await page.getByRole('status').filter({ hasText: 'is approved: the toy can play it now' }).waitFor();
  assert.equal(await item.getByRole('button', { name: /^Approve for the toy/ }).count(), 0);
  await screenshot(page, 'approval-approved');
  // The toy checked the parent's signature and released the message: its heart blinks.
  await toySays(/heart: blink/, { from });
  assert.doesNotMatch(toyOut.slice(from), /approval for message .* refused/);
  // Still approved after a reload (this browser remembers what it approved).
  await page.reload();
  await item.locator('[data-approval=approved]').waitFor();

  tell('press');
  const [, played] = await toySays(/played message (\S+) -> \S+\.ogg/, { from, timeoutMs: 30000 });
  assert.equal(played, messageId);
  await gran.page.locator(`li.message[data-message-id="${messageId}"] [data-state=heard]`).waitFor({ timeout: 30000 });
  // Once the toy played it, no approval is pending any more.
  await page.waitForFunction((id) => !document.querySelector(`li.message[data-message-id="${id}"] [data-approval]`), messageId, { timeout: 15000 });
  assert.deepEqual(parent.errors, []);
  assert.deepEqual(gran.errors, []);
});
