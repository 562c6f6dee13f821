// The app's look in a real Chromium against a real server: it follows the system's light or
// dark setting, and every main screen passes the axe-core accessibility checker (contrast
// included) in light, in dark, and in dark on a phone-sized screen.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { expectAccessible, makeVoiceWav, openBrowser, screenshot, signUp, startServer } from './harness.js';

const HOUSEHOLD = 'The Okafors';
const CHILD = 'Ada';
const DESKTOP = { width: 1024, height: 768 };
const PHONE = { width: 390, height: 844 };
/** index.html's theme colour outside dark mode, #a4462b. */
const LIGHT_THEME_COLOUR = 'rgb(164, 70, 43)';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let parent;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let visitor;
let work = '';
let householdPath = '';

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-appearance-story-'));
  const wav = makeVoiceWav(work, 'Hello.');
  parent = await openBrowser(wav);
  visitor = await openBrowser(wav);
  const page = parent.page;
  await page.goto(`${server.url}/signup`);
  await signUp(page, { email: 'ngozi@example.com', name: 'Ngozi' });
  await page.getByRole('heading', { name: 'Your households' }).waitFor();
  await page.getByLabel('Household name').fill(HOUSEHOLD);
  await page.getByLabel("Your child's name").fill(CHILD);
  await page.getByRole('button', { name: 'Create household' }).click();
  await page.getByRole('heading', { name: `Messages with ${CHILD}` }).waitFor();
  householdPath = new URL(page.url()).pathname;
});

after(async () => {
  await parent?.close();
  await visitor?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * The relative luminance (0 black to 1 white) of a computed CSS colour `rgb(r, g, b)`.
 * @param {string} css
 */
function luminance(css) {
  const parts = /rgba?\((\d+), (\d+), (\d+)/.exec(css);
  assert.ok(parts, `a computed colour: ${css}`);
  const [r, g, b] = parts.slice(1, 4).map((x) => {
    const c = Number(x) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/**
 * The page's own background and text colours, its theme colour, and the colours of its first
 * text field, as computed.
 * @param {import('playwright-core').Page} page
 */
async function colours(page) {
  return page.evaluate(() => {
    const root = getComputedStyle(document.documentElement);
    const field = document.querySelector('input[type=email], input[type=text], input[type=password], input:not([type])');
    const input = field ? getComputedStyle(field) : null;
    // The browser's own bar takes the first theme colour whose media query matches.
    const theme = [...document.querySelectorAll('meta[name=theme-color]')].find((m) => {
      const media = m.getAttribute('media');
      return !media || matchMedia(media).matches;
    });
    const swatch = document.createElement('span');
    swatch.style.color = theme?.getAttribute('content') ?? '';
    document.body.append(swatch);
    const themeColour = getComputedStyle(swatch).color;
    swatch.remove();
    return { background: root.backgroundColor, text: root.color, theme: themeColour, fieldBackground: input?.backgroundColor, fieldText: input?.color };
  });
}

/**
 * Checks that the screen is drawn in `scheme`: a dark page with light text, or the reverse,
 * the matching theme colour for the browser's bar, and the same for its first text field if
 * it has one.
 * @param {import('playwright-core').Page} page
 * @param {'light' | 'dark'} scheme
 * @param {string} label
 * @returns {Promise<boolean>} whether the screen had a text field to check
 */
async function drawnIn(page, scheme, label) {
  const c = await colours(page);
  const dark = (/** @type {string} */ css) => luminance(css) < 0.2;
  const expected = scheme === 'dark';
  assert.equal(dark(c.background), expected, `${label}: page background ${c.background} in ${scheme}`);
  assert.equal(dark(c.text), !expected, `${label}: page text ${c.text} in ${scheme}`);
  // Light keeps the brand colour for the browser's bar; dark gives it the page's own colour.
  assert.equal(c.theme, scheme === 'dark' ? c.background : LIGHT_THEME_COLOUR, `${label}: theme colour in ${scheme}`);
  if (c.fieldBackground === undefined || c.fieldText === undefined) return false;
  assert.equal(dark(c.fieldBackground), expected, `${label}: text field background ${c.fieldBackground} in ${scheme}`);
  assert.equal(dark(c.fieldText), !expected, `${label}: text field text ${c.fieldText} in ${scheme}`);
  return true;
}

/**
 * Visits each main screen in `scheme` at `viewport`: checks the colours, runs axe and keeps
 * a screenshot of each.
 * @param {'light' | 'dark'} scheme
 * @param {{ width: number, height: number }} viewport
 * @param {string} name
 */
async function visitScreens(scheme, viewport, name) {
  /** @type {[import('playwright-core').Page, string, string, string][]} */
  const screens = [
    [visitor.page, 'signin', '/signin', 'Sign in to pawpost'],
    [parent.page, 'households', '/', 'Your households'],
    [parent.page, 'household', householdPath, `Messages with ${CHILD}`],
    [parent.page, 'family', `${householdPath}/family`, 'Family and settings'],
    [parent.page, 'security', '/security', 'Security'],
  ];
  /** @type {string[]} */
  const withField = [];
  for (const [page, screen, path, heading] of screens) {
    const label = `${screen} (${name})`;
    await page.setViewportSize(viewport);
    await page.emulateMedia({ colorScheme: scheme });
    await page.goto(`${server.url}${path}`);
    await page.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor();
    await page.waitForLoadState('networkidle');
    if (await drawnIn(page, scheme, label)) withField.push(screen);
    await expectAccessible(page, label);
    await screenshot(page, `appearance-${name}-${screen}`);
  }
  // The form fields follow the scheme too (`color-scheme` and the field colours).
  assert.ok(['signin', 'households', 'security'].every((s) => withField.includes(s)), `screens with a text field: ${withField}`);
  assert.deepEqual(parent.errors, []);
  assert.deepEqual(visitor.errors, []);
}

test('in light, every main screen passes the accessibility checker', { timeout: 120000 }, async () => {
  await visitScreens('light', DESKTOP, 'light');
});

test('in dark, every main screen is drawn dark and passes the accessibility checker', { timeout: 120000 }, async () => {
  await visitScreens('dark', DESKTOP, 'dark');
});

test('in dark on a phone-sized screen, every main screen passes the accessibility checker', { timeout: 120000 }, async () => {
  await visitScreens('dark', PHONE, 'phone-dark');
});
