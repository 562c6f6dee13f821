// The family's stories in a real Chromium against a real server: accounts, a household,
// an invited grandparent, voice messages both ways, blocking, and XSS-proof rendering.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { makeVoiceWav, openBrowser, screenshot, signUp, startServer, StoryFamily, STRONG } from './harness.js';

const XSS_NAME = 'Gran <img src=x onerror="window.__pwned=1">';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let parent;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let gran;
/** @type {StoryFamily} */
let family;
let work = '';
let inviteUrl = '';

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-story-'));
  const wav = makeVoiceWav(work, 'Hello sweetheart, this is grandma. I love you. See you on Sunday.');
  parent = await openBrowser(wav);
  gran = await openBrowser(wav);
  family = new StoryFamily(server, {
    parent: { browser: parent, email: 'parent@example.com', name: 'Pat Parent' },
    relative: { browser: gran, email: 'gran@example.com', name: XSS_NAME },
    household: 'The Riveras',
    child: 'Mia Zephyrine',
  });
});

after(async () => {
  await parent?.close();
  await gran?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('a parent signs up: the password rules show while typing, the server explains a refusal', { timeout: 60000 }, async () => {
  const page = parent.page;
  await page.goto(`${server.url}/signup`);
  await page.getByLabel('Email').fill('parent@example.com');
  await page.getByLabel('Your name (as your family knows you)').fill('Pat Parent');
  const password = page.getByLabel('Password', { exact: true });
  await password.pressSequentially('short');
  const length = page.locator('[data-rule=length]');
  await assert.doesNotReject(length.filter({ hasText: 'At least 15 characters (5 so far)' }).waitFor());
  assert.equal(await length.getAttribute('class'), 'unmet');
  // Long enough but on every breached list: the server refuses it and says why.
  await password.fill('passwordpassword123');
  assert.equal(await page.locator('[data-rule=common]').getAttribute('class'), 'unmet');
  await screenshot(page, 'signup-rules');
  await page.getByRole('button', { name: 'Create account' }).click();
  // Beside the password, in plain words: never the server's rule name.
  await page.locator('#password-error').filter({ hasText: 'This password is too easy to guess' }).waitFor();
  assert.doesNotMatch(await page.locator('section.auth').innerText(), /rule \w+:|blocklist|min_length/);
  await password.fill(STRONG);
  assert.equal(await length.getAttribute('class'), 'met');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Your households' }).waitFor();
});

test('the parent creates a household and names the child (sealed, never sent in clear)', { timeout: 60000 }, async () => {
  await family.ensureSignedIn(family.parent);
  const page = parent.page;
  if (new URL(page.url()).pathname !== '/') await page.goto(server.url);
  await page.getByLabel('Household name').fill('The Riveras');
  await page.getByLabel("Your child's name").fill('Mia Zephyrine');
  await page.getByRole('button', { name: 'Create household' }).click();
  await page.getByRole('heading', { name: 'Messages with Mia Zephyrine' }).waitFor();
  await screenshot(page, 'household');
  // Reload: the session and the keys survive; the name is opened again from its envelope.
  await page.reload();
  await page.getByRole('heading', { name: 'Messages with Mia Zephyrine' }).waitFor();
});

test('the parent invites a grandparent, who signs up through the link and is approved', { timeout: 90000 }, async () => {
  await family.ensureHousehold();
  const page = parent.page;
  if (page.url() !== family.url) await page.goto(family.url);
  await page.getByRole('link', { name: 'Family, toy and settings' }).click();
  await page.getByRole('heading', { name: 'Family and settings' }).waitFor();
  await page.locator('.household-line').filter({ hasText: 'The Riveras' }).waitFor();
  await page.getByRole('button', { name: 'Create invitation link' }).click();
  inviteUrl = await page.getByLabel('Invitation link').inputValue();
  assert.match(inviteUrl, /\/join#.+/);
  await screenshot(page, 'family');

  const g = gran.page;
  await g.goto(inviteUrl);
  await g.getByText('You have been invited to a family on pawpost').waitFor();
  await signUp(g, { email: 'gran@example.com', name: XSS_NAME });
  await g.getByText('A parent of this household has to approve you').waitFor();

  await page.reload();
  const row = page.locator('li.member', { hasText: 'Gran' });
  await row.getByRole('button', { name: /^Approve/ }).click();
  await page.getByRole('status').filter({ hasText: 'is approved' }).waitFor();
  // The display name is shown as text, never parsed as HTML.
  assert.equal(await row.locator('.member-name').textContent(), XSS_NAME);
  assert.equal(await page.locator('li.member img').count(), 0);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).__pwned), undefined);
});

/**
 * Records from the fake microphone for about `ms` milliseconds.
 * @param {import('playwright-core').Page} page
 * @param {number} ms
 */
async function record(page, ms) {
  await page.getByRole('button', { name: 'Record' }).click();
  await page.getByRole('button', { name: 'Stop' }).waitFor();
  // The level meter moves while the fake microphone speaks.
  await page.waitForFunction(() => Number(/** @type {HTMLMeterElement} */ (document.querySelector('.rec-meter'))?.value) > 0.01, null, { timeout: 5000 });
  await page.waitForTimeout(ms);
  await page.getByRole('button', { name: 'Stop' }).click();
  await page.locator('.recorder[data-recorded]').waitFor();
  return Number(await page.locator('.recorder').getAttribute('data-recorded'));
}

// How long the grandparent's sent message is, once she sent it.
let sentMs = 0;

/** The grandparent records a message of about 2.5 s and sends it. */
async function sendFromGran() {
  const g = gran.page;
  await g.goto(family.url);
  await g.getByRole('heading', { name: 'Messages with Mia Zephyrine' }).waitFor();
  const recorded = await record(g, 2500);
  await g.getByRole('button', { name: 'Send to Mia Zephyrine' }).click();
  await g.getByRole('status').filter({ hasText: 'Sent.' }).waitFor();
  await g.locator('li.message.mine').first().waitFor();
  sentMs = recorded;
}

/** The family, and a message from the grandparent that the parent has not heard yet. */
async function ensureSentMessage() {
  await family.ensureFamily();
  if (!sentMs) await sendFromGran();
}

test('the grandparent records from the microphone and sends to the toy', { timeout: 90000 }, async () => {
  await family.ensureFamily();
  const g = gran.page;
  await g.goto(family.url);
  await g.getByRole('heading', { name: 'Messages with Mia Zephyrine' }).waitFor();
  const recorded = await record(g, 2500);
  assert.ok(recorded > 1500 && recorded < 5000, `recorded ${recorded} ms`);
  // The preview plays the remuxed Ogg Opus.
  const previewOk = await g.locator('.rec-preview audio').evaluate(
    (a) => new Promise((resolve) => {
      const audio = /** @type {HTMLAudioElement} */ (a);
      if (audio.readyState >= 1) resolve(audio.duration);
      audio.onloadedmetadata = () => resolve(audio.duration);
      audio.onerror = () => resolve(-1);
    }),
  );
  assert.ok(Number(previewOk) > 1, `preview duration ${previewOk}`);
  await screenshot(g, 'recorder');
  await g.getByRole('button', { name: 'Send to Mia Zephyrine' }).click();
  await g.getByRole('status').filter({ hasText: 'Sent.' }).waitFor();
  await g.locator('li.message.mine').first().waitFor();
  sentMs = recorded;
  assert.deepEqual(gran.errors, []);
});

test('the parent sees the new message, decrypts and hears it', { timeout: 60000 }, async () => {
  await ensureSentMessage();
  const page = parent.page;
  await page.goto(family.url);
  await page.locator('li.message.unread').first().waitFor();
  const id = await page.locator('li.message.unread').first().getAttribute('data-message-id');
  const item = page.locator(`li.message[data-message-id="${id}"]`);
  assert.match(await item.locator('.sender').textContent() ?? '', /^Gran </);
  await page.getByText('1 new message.').waitFor();
  await screenshot(page, 'messages');
  await item.getByRole('button', { name: /^Play/ }).click();
  const audio = item.locator('audio');
  await audio.waitFor();
  const duration = await audio.evaluate(
    (a) => new Promise((resolve) => {
      const el = /** @type {HTMLAudioElement} */ (a);
      if (el.readyState >= 1) resolve(el.duration);
      el.onloadedmetadata = () => resolve(el.duration);
      el.onerror = () => resolve(-1);
    }),
  );
  assert.ok(Math.abs(Number(duration) * 1000 - sentMs) < 300, `plays ${duration} s of ${sentMs} ms`);
  // Heard here: the grandparent's message shows as heard.
  await gran.page.locator('li.message.mine [data-state=heard]').waitFor({ timeout: 15000 });
  assert.deepEqual(parent.errors, []);
});

test('a blocked grandparent cannot send, and is told why', { timeout: 90000 }, async () => {
  await family.ensureFamily();
  const g = gran.page;
  await g.goto(family.url);
  await g.getByRole('heading', { name: 'Messages with Mia Zephyrine' }).waitFor();
  await record(g, 1200);

  const page = parent.page;
  await page.goto(`${family.url}/family`);
  const row = page.locator('li.member', { hasText: 'Gran' });
  // Blocking asks first.
  await row.getByRole('button', { name: /^Block/ }).click();
  await row.getByText('Only parents see that they are blocked').waitFor();
  await row.getByRole('button', { name: /^Yes, block/ }).click();
  await page.getByRole('status').filter({ hasText: 'is blocked' }).waitFor();

  // Sent before her page noticed, it is refused with the reason; then her page says what
  // happened and the recorder is gone.
  const send = g.getByRole('button', { name: 'Send to Mia Zephyrine' });
  if (await send.isVisible()) {
    await send.click();
    const alert = g.locator('.recorder .error').filter({ hasText: 'blocked' });
    const notice = g.locator('p.notice', { hasText: 'A parent of this household has blocked you' });
    await alert.or(notice).first().waitFor();
    if (await alert.isVisible()) assert.match(await alert.textContent() ?? '', /Not sent: .*a parent of this household has blocked you/);
  }
  await g.locator('p.notice', { hasText: 'A parent of this household has blocked you' }).waitFor({ timeout: 20000 });
  assert.equal(await g.locator('.recorder').count(), 0, 'no recorder once blocked');
  await screenshot(g, 'blocked-send');
});

test('settings become a new signed roster version; the security page lists sessions and devices', { timeout: 60000 }, async () => {
  await family.ensureHousehold();
  const page = parent.page;
  await page.goto(`${family.url}/family`);
  const id = family.householdId;
  const version = () => page.evaluate(async (hh) => (await (await fetch(`/api/v1/households/${hh}/roster`)).json()).version, id);
  const before = await version();
  await page.getByLabel('Quiet hours: the toy stays silent').check();
  await page.getByLabel('from', { exact: true }).fill('19:30');
  await page.getByLabel('to', { exact: true }).fill('07:00');
  await page.getByLabel('Delete played messages after (days)').fill('14');
  await page.getByLabel('A parent approves each message before the toy plays it').check();
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByRole('status').filter({ hasText: 'Settings saved.' }).waitFor();
  assert.equal(await version(), before + 1);
  assert.equal(await page.getByLabel('Delete played messages after (days)').inputValue(), '14');
  assert.ok(await page.getByLabel('Quiet hours: the toy stays silent').isChecked());

  await page.getByRole('link', { name: 'Security' }).click();
  await page.getByRole('heading', { name: 'Security' }).waitFor();
  await page.getByText('(this session)').waitFor();
  await page.getByText('(this browser)').waitFor();
  await screenshot(page, 'security');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to pawpost' }).waitFor();
  await page.goto(family.url);
  await page.getByRole('heading', { name: 'Sign in to pawpost' }).waitFor();
  await page.getByLabel('Email').fill('parent@example.com');
  await page.getByLabel('Password', { exact: true }).fill(STRONG);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { name: 'Messages with Mia Zephyrine' }).waitFor();
  assert.deepEqual(parent.errors, []);
});
