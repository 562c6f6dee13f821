// Confirming the email address in a real Chromium against a real server: after sign-up
// the households page asks for it, with a button that sends the link again; the link the
// server mails (read from its outbox folder) confirms the address and the notice goes;
// a used link says so in plain words, with what to do.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { expectAccessible, makeVoiceWav, openBrowser, screenshot, signUp, startServer } from './harness.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let browser;
let work = '';

const EMAIL = 'rose@example.com';
const SUBJECT = 'Confirm your email address for pawpost';
const NOTICE = `Please confirm your email address: we sent a link to ${EMAIL}.`;
const MAIL_WAIT_MS = 15000;

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-verify-story-'));
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
 * The link to confirm the address in a mail.
 * @param {string} mail
 */
function linkIn(mail) {
  const link = /(http:\/\/127\.0\.0\.1:\d+\/verify-email#[A-Za-z0-9_-]+)/.exec(mail)?.[1];
  assert.ok(link, `a link in the mail:\n${mail}`);
  assert.ok(link.startsWith(`${server.url}/verify-email#`), link);
  return link;
}

test('the emailed link confirms the address, and the households page stops asking', { timeout: 120000 }, async () => {
  const page = browser.page;
  await page.goto(`${server.url}/signup`);
  await signUp(page, { email: EMAIL, name: 'Rose' });
  await page.getByRole('heading', { name: 'Your households' }).waitFor();
  const notice = page.locator('.email-notice');
  await notice.filter({ hasText: NOTICE }).waitFor();
  await expectAccessible(page, 'households, address not confirmed');

  // Another link, its result beside the button.
  await page.getByRole('button', { name: 'Send the link again' }).click();
  await notice.getByRole('status').filter({ hasText: `We sent a new link to ${EMAIL}` }).waitFor();
  await screenshot(page, 'email-verification-notice');
  const [first, second] = (await mails(EMAIL, SUBJECT, 2)).map(linkIn);
  assert.notEqual(first, second);

  await page.goto(second);
  await page.getByRole('heading', { name: 'Email address confirmed' }).waitFor();
  await page.getByRole('status').filter({ hasText: 'Thank you, your email address is confirmed.' }).waitFor();
  assert.equal(new URL(page.url()).hash, '', 'the token leaves the address bar');
  await screenshot(page, 'email-verification-confirmed');

  await page.getByRole('link', { name: 'Go to your households' }).click();
  await page.getByRole('heading', { name: 'Your households' }).waitFor();
  await page.getByLabel('Household name').waitFor();
  assert.equal(await notice.count(), 0, 'the notice is gone');
  await page.reload();
  await page.getByLabel('Household name').waitFor();
  assert.equal(await notice.count(), 0, 'the notice stays gone');

  // The other link ended with the confirmation: signed out, it says so and what to do.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to pawpost' }).waitFor();
  await page.goto(first);
  await page.getByRole('alert').filter({ hasText: 'This link was already used, or it is not complete.' }).waitFor();
  await page.getByText('If your email address is not confirmed yet, sign in, then ask for a new link').waitFor();
  await page.getByRole('link', { name: 'Sign in' }).first().waitFor();
  await screenshot(page, 'email-verification-link-used');
  assert.deepEqual(browser.errors, []);
});
