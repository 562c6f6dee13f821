// A family's data given back and erased, in a real Chromium against a real server: the
// export downloads and opens here, an account is deleted (and its password no longer
// works), and a household is deleted for every member.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { apiGet, makeVoiceWav, openBrowser, screenshot, startServer, StoryFamily, STRONG } from './harness.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let parent;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let aunt;
/** @type {StoryFamily} */
let family;
let work = '';
// The aunt's voice message and its length, once she sent it.
let voiceId = '';
let sentMs = 0;

const HOUSEHOLD = 'The Lindqvists';

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-privacy-story-'));
  const wav = makeVoiceWav(work, 'Hello pumpkin, auntie here. Have a lovely day.');
  parent = await openBrowser(wav);
  aunt = await openBrowser(wav);
  family = new StoryFamily(server, {
    parent: { browser: parent, email: 'astrid@example.com', name: 'Astrid' },
    relative: { browser: aunt, email: 'karin@example.com', name: 'Aunt Karin' },
    household: HOUSEHOLD,
    child: 'Elsa',
  });
});

after(async () => {
  await parent?.close();
  await aunt?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * @param {import('playwright-core').Page} page
 * @param {string} email
 * @param {string} password
 */
async function signIn(page, email, password) {
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/**
 * @param {import('playwright-core').Locator} audio
 * @returns {Promise<number>} seconds, or -1 if it does not load
 */
function audioDuration(audio) {
  return audio.evaluate(
    (a) => new Promise((resolve) => {
      const el = /** @type {HTMLAudioElement} */ (a);
      if (el.readyState >= 1) resolve(el.duration);
      el.onloadedmetadata = () => resolve(el.duration);
      el.onerror = () => resolve(-1);
    }),
  );
}

/** The aunt records a message of about 2 s and sends it. */
async function sendFromAunt() {
  const a = aunt.page;
  await a.goto(family.url);
  await a.getByRole('heading', { name: 'Messages with Elsa' }).waitFor();
  await a.getByRole('button', { name: 'Record' }).click();
  await a.waitForTimeout(2000);
  await a.getByRole('button', { name: 'Stop' }).click();
  await a.locator('.recorder[data-recorded]').waitFor();
  const recorded = Number(await a.locator('.recorder').getAttribute('data-recorded'));
  await a.getByRole('button', { name: 'Send to Elsa' }).click();
  await a.getByRole('status').filter({ hasText: 'Sent.' }).waitFor();
  voiceId = /** @type {string} */ (await a.locator('li.message.mine').first().getAttribute('data-message-id'));
  sentMs = recorded;
}

/** The household with the aunt approved in it, and her voice message sent. */
async function ensureVoiceMessage() {
  await family.ensureFamily();
  if (!voiceId) await sendFromAunt();
}

/** Both accounts, and no household left that they share. */
async function ensureHouseholdGone() {
  if (!(await apiGet(aunt.page, server, '/api/v1/sessions/current'))) await family.ensureFamily();
  await family.ensureSignedIn(family.parent);
  const page = parent.page;
  const left = (await apiGet(page, server, '/api/v1/households'))?.find((/** @type {any} */ x) => x.name === HOUSEHOLD);
  if (!left) return;
  await page.goto(`${server.url}/households/${left.id}/family`);
  await page.getByRole('button', { name: 'Delete this household…' }).click();
  await page.getByLabel("Type the household's name to confirm").fill(HOUSEHOLD);
  await page.getByRole('button', { name: 'Delete this household', exact: true }).click();
  await page.getByRole('status').filter({ hasText: `${HOUSEHOLD} is deleted` }).waitFor();
  family.householdId = '';
}

test('a parent and an aunt share a household; the aunt sends a voice message', { timeout: 120000 }, async () => {
  // The parent signs up, creates the household and invites the aunt, who signs up through
  // the link and is approved.
  await family.ensureFamily();
  await sendFromAunt();
});

test('"Export my data" downloads the archive and opens its messages here, playable', { timeout: 90000 }, async () => {
  await ensureVoiceMessage();
  const page = parent.page;
  await page.goto(`${server.url}/security`);
  await page.getByRole('heading', { name: 'Security' }).waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export my data' }).click()]);
  assert.match(download.suggestedFilename(), /^pawpost-export-\d{4}-\d{2}-\d{2}\.json$/);
  const file = join(work, 'export.json');
  await download.saveAs(file);
  const archive = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(archive.account.email, 'astrid@example.com');
  const hh = archive.households.find((/** @type {any} */ x) => x.name === HOUSEHOLD);
  assert.ok(hh, 'the household is in the archive');
  const voice = hh.messages.find((/** @type {any} */ m) => m.message_id === voiceId);
  assert.ok(voice, "the aunt's message is in the archive");
  assert.ok(voice.envelope.length > 100, 'with its sealed envelope');
  // Still encrypted: the child's name is not in the file.
  assert.doesNotMatch(readFileSync(file, 'utf8'), /Elsa/);

  await page.getByRole('status').filter({ hasText: /This browser opened \d+ of its \d+ messages/ }).waitFor({ timeout: 30000 });
  const item = page.locator(`li.export-message[data-message-id="${voiceId}"]`);
  assert.equal(await item.locator('.sender').textContent(), 'Aunt Karin');
  // The child's name, sealed by this browser, reads as text.
  await page.locator('li.export-message .opened-text', { hasText: 'Elsa' }).first().waitFor();
  await item.getByRole('button', { name: /^Play/ }).click();
  const duration = await audioDuration(item.locator('audio'));
  assert.ok(Math.abs(duration * 1000 - sentMs) < 300, `plays ${duration} s of ${sentMs} ms`);
  await screenshot(page, 'export');
  assert.deepEqual(parent.errors, []);
});

test('the last owner cannot delete their account while others belong to the household', { timeout: 60000 }, async () => {
  await family.ensureFamily();
  const page = parent.page;
  if (new URL(page.url()).pathname !== '/security') await page.goto(`${server.url}/security`);
  await page.getByRole('button', { name: 'Delete my account', exact: true }).click();
  await page.getByLabel('Your password, to confirm').fill(STRONG);
  await page.getByRole('button', { name: 'Delete my account for good' }).click();
  const alert = page.locator('#delete-account-form .error');
  await alert.filter({ hasText: 'last owner' }).waitFor();
  assert.match(await alert.textContent() ?? '', /hand over ownership.*or delete the household/);
  assert.match(await alert.textContent() ?? '', /The Lindqvists/);
  await screenshot(page, 'delete-account-last-owner');
  // Still signed in.
  await page.reload();
  await page.getByRole('heading', { name: 'Security' }).waitFor();
});

test('an owner deletes the household by typing its name; it leaves every member\'s list', { timeout: 60000 }, async () => {
  await family.ensureFamily();
  const householdUrl = family.url;
  const a = aunt.page;
  await a.goto(householdUrl);
  await a.getByRole('heading', { name: 'Messages with Elsa' }).waitFor();

  const page = parent.page;
  await page.goto(`${householdUrl}/family`);
  await page.getByRole('button', { name: 'Delete this household…' }).click();
  const confirm = page.getByRole('button', { name: 'Delete this household', exact: true });
  const typed = page.getByLabel("Type the household's name to confirm");
  await typed.fill('The Lindqvist');
  assert.ok(await confirm.isDisabled(), 'a wrong name does not enable deletion');
  await typed.fill(HOUSEHOLD);
  await screenshot(page, 'delete-household');
  await confirm.click();
  await page.getByRole('heading', { name: 'Your households' }).waitFor();
  await page.getByRole('status').filter({ hasText: `${HOUSEHOLD} is deleted` }).waitFor();
  assert.equal(await page.getByRole('link', { name: HOUSEHOLD }).count(), 0);

  // The aunt's open page notices; her list no longer has it.
  await a.getByText('This household is gone').waitFor({ timeout: 15000 });
  await a.goto(server.url);
  await a.getByRole('heading', { name: 'Your households' }).waitFor();
  assert.equal(await a.getByRole('link', { name: HOUSEHOLD }).count(), 0);
  await a.goto(householdUrl);
  await a.getByRole('heading', { name: 'Household not found' }).waitFor();
  family.householdId = '';
});

test('deleting an account signs the person out, and the password no longer works', { timeout: 60000 }, async () => {
  await ensureHouseholdGone();
  const a = aunt.page;
  await a.goto(`${server.url}/security`);
  await a.getByRole('button', { name: 'Delete my account', exact: true }).click();
  await a.getByLabel('Your password, to confirm').fill('not my password at all, sorry');
  await a.getByRole('button', { name: 'Delete my account for good' }).click();
  await a.locator('#delete-account-form .error').filter({ hasText: 'password is wrong' }).waitFor();
  await a.getByLabel('Your password, to confirm').fill(STRONG);
  await a.getByRole('button', { name: 'Delete my account for good' }).click();
  await a.getByRole('heading', { name: 'Sign in to pawpost' }).waitFor();
  await a.getByRole('status').filter({ hasText: 'Your account is deleted' }).waitFor();
  await screenshot(a, 'account-deleted');
  // The session is gone on the server too.
  assert.equal(await a.evaluate(async () => (await fetch('/api/v1/sessions/current')).status), 401);
  await signIn(a, 'karin@example.com', STRONG);
  await a.getByRole('alert').filter({ hasText: /\S/ }).waitFor();
  assert.equal(await a.getByRole('heading', { name: 'Sign in to pawpost' }).count(), 1);
  // This browser forgot the account's device.
  assert.equal(await a.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('pawpost.device.')).length), 0);

  // With no other member left, the parent may now leave too.
  const page = parent.page;
  await page.goto(`${server.url}/security`);
  await page.getByRole('button', { name: 'Delete my account', exact: true }).click();
  await page.getByLabel('Your password, to confirm').fill(STRONG);
  await page.getByRole('button', { name: 'Delete my account for good' }).click();
  await page.getByRole('heading', { name: 'Sign in to pawpost' }).waitFor();
  await signIn(page, 'astrid@example.com', STRONG);
  await page.getByRole('alert').filter({ hasText: /\S/ }).waitFor();
  assert.deepEqual(parent.errors, []);
});
