// The app on a phone (390×844, touch): on every main screen nothing scrolls sideways, every
// link, button, field and checkbox is a target of at least 44×44 px (a checkbox through
// its label), and axe-core finds nothing in light or dark. The family page's parts are one
// tap away; the Security page names sign-ins as "Chrome on Android" and signs out every
// other one.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { apiGet, expectAccessible, makeVoiceWav, openBrowser, screenshot, signUp, startServer, STRONG } from './harness.js';

const HOUSEHOLD = 'The Riveras';
const CHILD = 'Mia';
const EMAIL = 'lucia@example.com';
/** WCAG 2.5.5's target size, and Apple's and Google's. */
const MIN_TARGET_PX = 44;
const ANDROID_CHROME = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let phone;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let laptop;
let work = '';
let householdPath = '';

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-phone-story-'));
  const wav = makeVoiceWav(work, 'Hello Mia.');
  phone = await openBrowser(wav, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, userAgent: ANDROID_CHROME });
  laptop = await openBrowser(wav);
});

after(async () => {
  await phone?.close();
  await laptop?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * Fails with every visible interactive element smaller than 44×44 px, and if the page
 * scrolls sideways.
 * @param {import('playwright-core').Page} page
 * @param {string} label
 */
async function expectPhoneSized(page, label) {
  const found = await page.evaluate((min) => {
    const fits = (/** @type {DOMRect} */ r) => r.width >= min - 0.5 && r.height >= min - 0.5;
    /** @type {string[]} */
    const small = [];
    for (const el of document.querySelectorAll('a[href], button, input, select, summary, textarea, label')) {
      if (el.closest('[hidden]') || (el instanceof HTMLInputElement && el.type === 'hidden')) continue;
      const style = getComputedStyle(el);
      const r = el.getBoundingClientRect();
      // Not shown: no box, or the visually-hidden pattern (a 1 px clipped box).
      if (style.visibility === 'hidden' || style.display === 'none' || r.width <= 1 || r.height <= 1) continue;
      const box = el instanceof HTMLInputElement && (el.type === 'checkbox' || el.type === 'radio');
      // Only labels that wrap a checkbox are targets of their own.
      if (el.tagName === 'LABEL' && !el.querySelector('input[type=checkbox], input[type=radio]')) continue;
      // A checkbox is tapped through its label as well.
      if (box && [r, ...Array.from(/** @type {HTMLInputElement} */ (el).labels ?? [], (l) => l.getBoundingClientRect())].some(fits)) continue;
      if (fits(r)) continue;
      const name = (el.getAttribute('aria-label') || el.textContent || el.getAttribute('id') || '').trim().slice(0, 40);
      small.push(`${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''} "${name}" ${Math.round(r.width)}×${Math.round(r.height)}`);
    }
    return { small, scrollWidth: document.documentElement.scrollWidth, innerWidth };
  }, MIN_TARGET_PX);
  assert.ok(found.scrollWidth <= found.innerWidth, `${label}: the page scrolls sideways (${found.scrollWidth} px wide in ${found.innerWidth})`);
  assert.deepEqual(found.small, [], `${label}: targets under ${MIN_TARGET_PX}×${MIN_TARGET_PX} px`);
}

/**
 * The screen as it is, checked on a phone in light and in dark.
 * @param {import('playwright-core').Page} page
 * @param {string} label
 */
async function checkScreen(page, label) {
  await page.waitForLoadState('networkidle');
  for (const colorScheme of /** @type {const} */ (['light', 'dark'])) {
    await page.emulateMedia({ colorScheme });
    await expectPhoneSized(page, `${label} (${colorScheme})`);
    await expectAccessible(page, `${label} on a phone (${colorScheme})`);
    await screenshot(page, `phone-${label}-${colorScheme}`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

test('on a phone, every main screen fits, has 44 px targets and passes axe in light and dark', { timeout: 240000 }, async () => {
  const page = phone.page;
  await page.goto(`${server.url}/signin`);
  await page.getByRole('heading', { name: 'Sign in to pawpost' }).waitFor();
  await checkScreen(page, 'signin');

  await page.goto(`${server.url}/signup`);
  await page.getByRole('heading', { name: 'Create your pawpost account' }).waitFor();
  await checkScreen(page, 'signup');
  await signUp(page, { email: EMAIL, name: 'Lucía' });
  await page.getByRole('heading', { name: 'Your households' }).waitFor();
  await checkScreen(page, 'households');

  await page.getByLabel('Household name').fill(HOUSEHOLD);
  await page.getByLabel("Your child's name").fill(CHILD);
  await page.getByRole('button', { name: 'Create household' }).click();
  await page.getByRole('heading', { name: `Messages with ${CHILD}` }).waitFor();
  householdPath = new URL(page.url()).pathname;
  await page.locator('.recorder').waitFor();
  await checkScreen(page, 'household');

  await page.goto(`${server.url}${householdPath}/family`);
  await page.getByRole('heading', { name: 'Family and settings' }).waitFor();
  await checkScreen(page, 'family');

  await page.goto(`${server.url}/security`);
  await page.getByRole('heading', { name: 'Security', level: 1 }).waitFor();
  await checkScreen(page, 'security');
  await page.getByRole('heading', { name: 'Recent activity' }).scrollIntoViewIfNeeded();
  await page.locator('ul.activity').first().waitFor();
  // Naming the child is a sealed text message: the activity says what it was.
  const mine = page.getByRole('list', { name: 'Your recent activity' });
  await mine.getByText("You saved the child's name, sealed for the family").waitFor();
  assert.equal(await mine.getByText('You sent a message').count(), 0);
  await checkScreen(page, 'activity');
  assert.deepEqual(phone.errors, []);
});

test("the family page's parts are one tap away, and the quiet hours' from and to stay beside their fields", { timeout: 60000 }, async () => {
  const page = phone.page;
  await page.goto(`${server.url}${householdPath}/family`);
  const nav = page.getByRole('navigation', { name: 'Parts of this page' });
  await nav.getByRole('link', { name: 'Settings', exact: true }).waitFor();
  const parts = await nav.getByRole('link').allTextContents();
  for (const part of ['Family members', 'Invite a relative', 'Toy', 'Your child', 'Settings', 'Delete this household']) {
    assert.ok(parts.includes(part), `the page's parts include ${part}: ${parts}`);
  }
  await nav.getByRole('link', { name: 'Settings', exact: true }).tap();
  const heading = page.getByRole('heading', { name: 'Settings', exact: true });
  await page.waitForFunction(() => document.activeElement?.id === 'settings-title');
  assert.ok(await heading.isVisible());
  const box = await heading.boundingBox();
  assert.ok(box && box.y >= 0 && box.y < 844 / 2, `the Settings heading is at the top of the screen: ${JSON.stringify(box)}`);
  assert.equal(new URL(page.url()).pathname, `${householdPath}/family`, 'the address stays');
  for (const id of ['quiet-from', 'quiet-to']) {
    const field = await page.locator(`#${id}`).boundingBox();
    const label = await page.locator(`label[for=${id}]`).boundingBox();
    assert.ok(field && label && Math.abs(field.y + field.height / 2 - (label.y + label.height / 2)) < 8, `${id}: its label is on its line`);
  }
  const [from, to] = await Promise.all(['#quiet-from', '#quiet-to'].map((s) => page.locator(s).boundingBox()));
  assert.ok(from && to && Math.abs(from.y - to.y) < 4, 'from and to share one line');
  // A mistake in the settings is said beside them, not at the top of the page.
  await page.locator('#quiet-on').check();
  await page.locator('#quiet-from').fill('19:00');
  await page.locator('#quiet-to').fill('19:00');
  await page.getByRole('button', { name: 'Save settings' }).tap();
  const settings = page.locator('section[aria-labelledby=settings-title]');
  await settings.getByRole('alert').filter({ hasText: 'Quiet hours need a start and an end that differ.' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'quiet-from', 'the field to change has the focus');
  assert.deepEqual(phone.errors, []);
});

test('the Security page names each sign-in plainly and signs out everywhere else', { timeout: 60000 }, async () => {
  await laptop.page.goto(`${server.url}/signin`);
  await laptop.page.getByLabel('Email').fill(EMAIL);
  await laptop.page.getByLabel('Password', { exact: true }).fill(STRONG);
  await laptop.page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await laptop.page.getByRole('heading', { name: 'Your households' }).waitFor();

  const page = phone.page;
  await page.goto(`${server.url}/security`);
  const sessions = page.locator('ul.sessions > li');
  await sessions.nth(1).waitFor();
  const names = await page.locator('ul.sessions .session-name').allTextContents();
  assert.ok(names.includes('Chrome on Android'), `the phone is named plainly: ${names}`);
  assert.ok(names.includes('Chrome on Linux'), `the laptop is named plainly: ${names}`);
  assert.doesNotMatch(await page.locator('ul.sessions').innerText(), /Mozilla|AppleWebKit|KHTML/, 'no raw User-Agent');

  await page.getByRole('button', { name: 'Sign out everywhere else' }).tap();
  await page.getByRole('button', { name: 'Yes, sign out the others' }).tap();
  await page
    .getByRole('status')
    .filter({ hasText: '1 other sign-in ended. Only this browser is signed in now.' })
    .waitFor()
    .catch(async (e) => assert.fail(`${e}\nthe page says: ${await page.locator('.sign-out-others').innerText()}`));
  assert.equal(await sessions.count(), 1);
  assert.ok(await apiGet(page, server, '/api/v1/sessions/current'), 'the phone stays signed in');
  assert.equal(await apiGet(laptop.page, server, '/api/v1/sessions/current'), null, 'the laptop is signed out');
  const activity = await apiGet(page, server, '/api/v1/accounts/me/activity');
  assert.ok(activity.some((/** @type {any} */ e) => e.action === 'other_sessions_ended' && e.target === '1'), 'recorded in the activity');
  await laptop.page.reload();
  await laptop.page.getByRole('heading', { name: 'Sign in to pawpost' }).waitFor();
  assert.deepEqual(phone.errors, []);
});
