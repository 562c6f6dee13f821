// Passwords in a real Chromium against a real server: a forgotten password is replaced
// through the link the server mails (read from its outbox folder), the link works once,
// and the Security page changes the password, showing a wrong current password beside
// its field.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { makeVoiceWav, openBrowser, screenshot, signUp, startServer, STRONG } from './harness.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let browser;
let work = '';

const EMAIL = 'rosa@example.com';
const NEW_PASSWORD = 'lighthouse gravel tangerine umbrella';
const THIRD_PASSWORD = 'copper meadow whistle lantern';
const MAIL_WAIT_MS = 15000;

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-passwords-story-'));
  browser = await openBrowser(makeVoiceWav(work, 'Hello.'));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * The body of a quoted-printable mail, decoded.
 * @param {string} raw
 */
function bodyOf(raw) {
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  const bytes = Buffer.from(body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
  return bytes.toString('utf8');
}

/**
 * Waits for the server to have written `count` mails to `to` with `subject` into its
 * outbox; returns their bodies.
 * @param {string} to
 * @param {string} subject
 * @param {number} [count]
 */
async function mails(to, subject, count = 1) {
  const dir = join(server.dataDir, 'data', 'outbox');
  const end = Date.now() + MAIL_WAIT_MS;
  for (;;) {
    const found = (existsSync(dir) ? readdirSync(dir) : [])
      .filter((name) => name.endsWith('.eml'))
      .map((name) => readFileSync(join(dir, name), 'utf8'))
      .filter((raw) => raw.includes(`To: ${to}\r\n`) && raw.includes(`Subject: ${subject}\r\n`))
      .map(bodyOf);
    if (found.length >= count) return found;
    if (Date.now() > end) throw new Error(`no mail "${subject}" to ${to} in ${dir}; server log:\n${server.log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} password
 */
async function signIn(page, password) {
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

test('a forgotten password is replaced through the emailed link, which works once', { timeout: 120000 }, async () => {
  const page = browser.page;
  await page.goto(`${server.url}/signup`);
  await signUp(page, { email: EMAIL, name: 'Rosa' });
  await page.getByLabel('Household name').waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to pawpost' }).waitFor();

  await page.getByRole('link', { name: 'Forgot password?' }).click();
  await page.getByRole('heading', { name: 'Forgot your password?' }).waitFor();
  await page.getByLabel('Your email address').fill(EMAIL);
  await page.getByRole('button', { name: 'Send me a link' }).click();
  await page.getByRole('status').filter({ hasText: `If an account uses ${EMAIL}, we sent it an email` }).waitFor();

  const [mail] = await mails(EMAIL, 'Choose a new pawpost password');
  const link = /(http:\/\/127\.0\.0\.1:\d+\/reset#[A-Za-z0-9_-]+)/.exec(mail)?.[1];
  assert.ok(link, `a link in the mail:\n${mail}`);
  assert.ok(link.startsWith(`${server.url}/reset#`), link);

  await page.goto(link);
  await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
  assert.equal(new URL(page.url()).hash, '', 'the token leaves the address bar');

  // A password the server refuses: the reason is shown beside the field, in plain words.
  const field = page.locator('.field').filter({ has: page.getByLabel('Your new password') });
  await page.getByLabel('Your new password').fill('too short');
  await page.getByRole('button', { name: 'Set my new password' }).click();
  await field.locator('.error').filter({ hasText: 'This password is too short' }).waitFor();
  const shown = await field.locator('.error').textContent();
  assert.doesNotMatch(shown ?? '', /password_rejected|min_length|rule /, 'no internal code or raw message');
  await screenshot(page, 'passwords-reset-refused');

  await page.getByLabel('Your new password').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Set my new password' }).click();
  await page.getByRole('heading', { name: 'Sign in to pawpost' }).waitFor();
  await page.getByRole('status').filter({ hasText: 'Your new password is set' }).waitFor();

  await signIn(page, STRONG);
  await page.locator('.error').filter({ hasText: 'do not match an account' }).waitFor();
  await signIn(page, NEW_PASSWORD);
  await page.getByLabel('Household name').waitFor();
  const [notice] = await mails(EMAIL, 'Your pawpost password was reset');
  assert.match(notice, /signed out/);

  // The same link a second time does nothing and says to ask for a new one.
  await page.goto(link);
  await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
  await page.getByLabel('Your new password').fill(THIRD_PASSWORD);
  await page.getByRole('button', { name: 'Set my new password' }).click();
  await page.getByRole('alert').filter({ hasText: 'This link no longer works' }).waitFor();
  await page.getByRole('link', { name: 'Ask for a new link' }).waitFor();
  await screenshot(page, 'passwords-link-used');
  assert.deepEqual(browser.errors, []);
});

test('the Security page changes the password and shows a wrong current password beside its field', { timeout: 120000 }, async () => {
  const page = browser.page;
  await page.goto(`${server.url}/security`);
  await page.getByRole('heading', { name: 'Change your password' }).waitFor();

  const current = page.locator('.field').filter({ has: page.getByLabel('Your current password') });
  await page.getByLabel('Your current password').fill('not my password at all');
  await page.getByLabel('Your new password').fill(THIRD_PASSWORD);
  await page.getByRole('button', { name: 'Change my password' }).click();
  await current.locator('.error').filter({ hasText: 'That is not your current password' }).waitFor();
  assert.equal(await page.getByLabel('Your current password').getAttribute('aria-invalid'), 'true');
  await screenshot(page, 'passwords-wrong-current');

  await page.getByLabel('Your current password').fill(NEW_PASSWORD);
  await page.getByLabel('Your new password').fill(THIRD_PASSWORD);
  await page.getByRole('button', { name: 'Change my password' }).click();
  await page.getByRole('status').filter({ hasText: 'Your password is changed' }).waitFor();
  const [notice] = await mails(EMAIL, 'Your pawpost password was changed');
  assert.match(notice, /signed out/);
  assert.match(notice, /Forgot password\?/);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to pawpost' }).waitFor();
  await signIn(page, THIRD_PASSWORD);
  await page.getByLabel('Household name').waitFor();
  assert.deepEqual(browser.errors, []);
});
