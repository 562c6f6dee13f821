// The audit trail, readable by the family in a real Chromium against a real server: the
// Security page lists a failed sign-in attempt and the successful sign-in with its address,
// and a household's activity names the member a parent blocked.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { makeVoiceWav, openBrowser, screenshot, startServer, StoryFamily, STRONG } from './harness.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let parent;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let uncle;
/** @type {StoryFamily} */
let family;
let work = '';

const HOUSEHOLD = 'The Okafors';

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-activity-story-'));
  const wav = makeVoiceWav(work, 'Hello little one.');
  parent = await openBrowser(wav);
  uncle = await openBrowser(wav);
  family = new StoryFamily(server, {
    parent: { browser: parent, email: 'ngozi@example.com', name: 'Ngozi' },
    relative: { browser: uncle, email: 'emeka@example.com', name: 'Uncle Emeka' },
    household: HOUSEHOLD,
    child: 'Ada',
  });
});

after(async () => {
  await parent?.close();
  await uncle?.close();
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

test('a failed sign-in attempt and the good one are listed under "Recent activity"', { timeout: 90000 }, async () => {
  // The parent signs up (through the form, unless this story already did) and creates the household.
  await family.ensureHousehold();
  const page = parent.page;
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to pawpost' }).waitFor();
  await signIn(page, 'ngozi@example.com', 'this is certainly not my password');
  await page.getByRole('alert').filter({ hasText: /\S/ }).waitFor();
  await signIn(page, 'ngozi@example.com', STRONG);
  await page.getByRole('link', { name: 'Security' }).waitFor();

  await page.goto(`${server.url}/security`);
  await page.getByRole('heading', { name: 'Recent activity' }).waitFor();
  const list = page.getByRole('list', { name: 'Your recent activity' });
  const failed = list.locator('li', { hasText: 'Failed sign-in attempt from 127.0.0.1' });
  await failed.waitFor();
  assert.match(await failed.getAttribute('class') ?? '', /\balert\b/, 'the failed attempt is highlighted');
  assert.match(await failed.textContent() ?? '', / — \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}$/);
  // Newest first: the good sign-in comes before the failed attempt.
  const items = await list.locator('li').allTextContents();
  assert.match(items[0], /^Signed in from 127\.0\.0\.1 — /);
  const failedAt = items.findIndex((t) => t.startsWith('Failed sign-in attempt'));
  assert.ok(failedAt > 0, `the failed attempt follows the sign-in: ${items.join(' | ')}`);
  assert.ok(items.some((t) => t.startsWith('Signed out')), 'the sign-out is listed');
  assert.ok(items.some((t) => t.startsWith('Account created from 127.0.0.1')), 'the account creation is listed');
  assert.equal(await list.locator('li.alert').count(), 1, 'only the failed attempt is highlighted');
  await screenshot(page, 'recent-activity');
  assert.deepEqual(parent.errors, []);
});

test('after a parent blocks a member, the household activity names who was blocked', { timeout: 90000 }, async () => {
  // The parent invites the uncle, who signs up through the link, and approves him.
  await family.ensureFamily();
  const page = parent.page;
  await page.goto(`${family.url}/family`);
  await page.locator('li.member', { hasText: 'Uncle Emeka' }).getByRole('button', { name: /^Block/ }).click();
  await page.locator('li.member', { hasText: 'Uncle Emeka' }).getByRole('button', { name: /^Yes, block/ }).click();
  await page.getByRole('status').filter({ hasText: 'is blocked' }).waitFor();

  await page.goto(`${server.url}/security`);
  await page.getByRole('heading', { name: 'Household activity' }).waitFor();
  const list = page.getByRole('list', { name: `Activity in ${HOUSEHOLD}` });
  const blocked = list.locator('li', { hasText: 'You blocked Uncle Emeka' });
  await blocked.waitFor();
  assert.match(await blocked.getAttribute('class') ?? '', /\balert\b/, 'the block is highlighted');
  const items = await list.locator('li').allTextContents();
  // Newest first.
  const at = (/** @type {string} */ start) => items.findIndex((t) => t.startsWith(start));
  const order = [at('You blocked Uncle Emeka — '), at('You approved Uncle Emeka'), at('Uncle Emeka joined with an invitation link'), at('You created an invitation link for family'), at('You created the household')];
  assert.ok(order.every((i, n) => i >= 0 && (n === 0 || i > order[n - 1])), `in order, newest first: ${items.join(' | ')}`);
  // No account ids where the members list knows the names.
  assert.doesNotMatch(items.join('\n'), /[0-9a-f]{8}-[0-9a-f]{4}-/);
  // The person's own activity names the member too.
  await page.getByRole('list', { name: 'Your recent activity' }).locator('li', { hasText: 'You blocked Uncle Emeka' }).waitFor();
  await screenshot(page, 'household-activity');
  assert.deepEqual(parent.errors, []);
});
