// The family's stories in a real Chromium against a real server: accounts, a household,
// an invited grandparent, voice messages both ways, blocking, and XSS-proof rendering.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { readOggOpus } from '../../js/media/ogg.js';
import { makeVoiceWav, openBrowser, screenshot, signUp, startServer, STRONG } from './harness.js';

const XSS_NAME = 'Gran <img src=x onerror="window.__pwned=1">';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let parent;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let gran;
let work = '';
let householdUrl = '';
let inviteUrl = '';

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-story-'));
  const wav = makeVoiceWav(work, 'Hello sweetheart, this is grandma. I love you. See you on Sunday.');
  parent = await openBrowser(wav);
  gran = await openBrowser(wav);
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
  await page.getByRole('alert').filter({ hasText: 'rule blocklist' }).waitFor();
  await password.fill(STRONG);
  assert.equal(await length.getAttribute('class'), 'met');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Your households' }).waitFor();
});

test('the parent creates a household and names the child (sealed, never sent in clear)', { timeout: 60000 }, async () => {
  const page = parent.page;
  await page.getByLabel('Household name').fill('The Riveras');
  await page.getByLabel("Your child's name").fill('Mia Zephyrine');
  await page.getByRole('button', { name: 'Create household' }).click();
  await page.getByRole('heading', { name: 'Messages with Mia Zephyrine' }).waitFor();
  householdUrl = page.url();
  await screenshot(page, 'household');
  // Reload: the session and the keys survive; the name is opened again from its envelope.
  await page.reload();
  await page.getByRole('heading', { name: 'Messages with Mia Zephyrine' }).waitFor();
});

test('the parent invites a grandparent, who signs up through the link and is approved', { timeout: 90000 }, async () => {
  const page = parent.page;
  await page.getByRole('link', { name: 'Family, toy and settings' }).click();
  await page.getByRole('heading', { name: 'Family of The Riveras' }).waitFor();
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
