// Notification mails in a real Chromium against a real server: the Security page's
// "Email me when…" switches save at once, say so beside themselves and survive a reload;
// the family page emails an invitation, says so beside the address, and the mail (read
// from the server's outbox folder) holds the same link the page shows.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { apiGet, expectAccessible, makeVoiceWav, openBrowser, screenshot, startServer, StoryFamily } from './harness.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let parent;
/** @type {StoryFamily} */
let family;
let work = '';

const MAIL_WAIT_MS = 15000;
const AUNT = 'aunt.ines@example.com';

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-notifications-story-'));
  parent = await openBrowser(makeVoiceWav(work, 'Hello.'));
  family = new StoryFamily(server, {
    parent: { browser: parent, email: 'noor@example.com', name: 'Noor' },
    relative: { browser: parent, email: 'unused@example.com', name: 'Unused' },
    household: 'The Haddads',
    child: 'Sami',
  });
});

after(async () => {
  await parent?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * The text of a mail, quoted-printable decoded.
 * @param {string} raw
 */
function bodyOf(raw) {
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  const bytes = Buffer.from(body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
  return bytes.toString('utf8');
}

/**
 * Waits for a mail to `to` whose text holds `needle`; returns its text.
 * @param {string} to
 * @param {string} needle
 */
async function mailTo(to, needle) {
  const dir = join(server.dataDir, 'data', 'outbox');
  const end = Date.now() + MAIL_WAIT_MS;
  for (;;) {
    const found = (existsSync(dir) ? readdirSync(dir) : [])
      .filter((name) => name.endsWith('.eml'))
      .map((name) => readFileSync(join(dir, name), 'utf8'))
      .filter((raw) => raw.includes(`To: ${to}\r\n`))
      .map(bodyOf)
      .find((text) => text.includes(needle));
    if (found) return found;
    if (Date.now() > end) throw new Error(`no mail to ${to} with "${needle}" in ${dir}; server log:\n${server.log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('the Security page switches save at once and survive a reload', { timeout: 120000 }, async () => {
  await family.ensureHousehold();
  const page = parent.page;
  await page.goto(`${server.url}/security`);
  await page.getByRole('heading', { name: 'Email me when…' }).waitFor();
  const replies = page.getByLabel('the toy sends a new message in one of my families');
  const approvals = page.getByLabel('someone joined a family I look after and waits for my approval');
  assert.equal(await replies.isChecked(), true, 'every kind is on at first');
  assert.equal(await approvals.isChecked(), true);

  await replies.uncheck();
  await page.locator('#notify-child_replied-result').filter({ hasText: 'Saved: no more emails about this.' }).waitFor();
  await screenshot(page, 'notifications-switch-saved');
  await expectAccessible(page, 'security page with the email switches');

  await page.reload();
  await page.getByRole('heading', { name: 'Email me when…' }).waitFor();
  assert.equal(await page.getByLabel('the toy sends a new message in one of my families').isChecked(), false, 'off after a reload');
  assert.equal(await page.getByLabel('someone joined a family I look after and waits for my approval').isChecked(), true, 'the others untouched');
  const saved = await apiGet(page, server, '/api/v1/accounts/me/notifications');
  assert.deepEqual(
    saved.settings.filter((/** @type {any} */ s) => !s.enabled).map((/** @type {any} */ s) => s.kind),
    ['child_replied'],
  );

  // Back on, and it says so.
  await page.goto(`${server.url}/security`);
  await page.getByLabel('the toy sends a new message in one of my families').check();
  await page.locator('#notify-child_replied-result').filter({ hasText: 'Saved: we will email you.' }).waitFor();
  const activity = await apiGet(page, server, '/api/v1/accounts/me/activity');
  assert.ok(
    activity.some((/** @type {any} */ e) => e.action === 'notifications_changed'),
    'the change is in the account activity',
  );
});

test('the family page emails an invitation and says so beside the address', { timeout: 120000 }, async () => {
  await family.ensureHousehold();
  const page = parent.page;
  await page.goto(`${family.url}/family`);
  await page.getByLabel('Their email address (optional)').fill('not an address');
  await page.getByRole('button', { name: 'Create invitation link' }).click();
  await page.locator('#invite-email-result').filter({ hasText: 'This email address does not look right' }).waitFor();

  await page.getByLabel('Their email address (optional)').fill(AUNT);
  await page.getByRole('button', { name: 'Create invitation link' }).click();
  await page.getByRole('status').filter({ hasText: `We emailed the invitation to ${AUNT}.` }).waitFor();
  const link = await page.getByLabel('Invitation link').inputValue();
  await screenshot(page, 'notifications-invitation-emailed');
  await expectAccessible(page, 'family page after emailing an invitation');

  const mail = await mailTo(AUNT, 'You are invited to join the household');
  assert.ok(mail.includes(link), `the mail holds the link the page shows:\n${mail}`);
  assert.ok(!mail.includes('Sami'), 'never the child\'s name');
});
