// The printable recovery-code sheet and the "type two groups back" prompt
// (web/js/views/recovery-sheet.js, web/css/print.css) in a real Chromium on the app's own
// origin, under its Content-Security-Policy: the sheet shows the code, its QR code (the same
// symbol the npm package qrcode makes for that text), the date and the instructions; it
// passes the accessibility checker in light and dark; printed, the page shows only the
// sheet, black on white; the prompt accepts the groups asked for however they are typed and
// refuses others.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import QRCode from 'qrcode';

import { expectAccessible, makeVoiceWav, openBrowser, screenshot, startServer } from './harness.js';

const HOUSEHOLD = 'The Brandts';
/** Groups 3 and 6 hold a 0 and a 1, which the prompt must also take as O, I or L. */
const CODE = '7K3M-Q9XA-40TN-B2WD-6YRF-P1CE-ZJ0V-M5KG';
const CREATED_AT = '2026-03-14T10:00:00Z';
const INSTRUCTIONS = [
  'Keep this paper somewhere safe, like where you keep passports.',
  'If you lose your phone or computer, sign in to pawpost on a new one and enter this code to look after your family again.',
  "Anyone with this code and your password can run your family's toy, so do not share it.",
];
/** The format information's fixed mask and level M's two bits (ISO/IEC 18004). */
const FORMAT_MASK = 0b101010000010010;
const LEVEL_M = 0b00;

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let browser;
let work = '';

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-recovery-sheet-'));
  browser = await openBrowser(makeVoiceWav(work, 'Hello.'));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * Opens the app (its sign-in page, with the app's header) and adds the sheet and a form
 * holding the prompt (asking for groups 3 and 6) to it, as the recovery page does.
 * @param {import('playwright-core').Page} page
 */
async function showSheet(page) {
  await page.emulateMedia({ media: 'screen', colorScheme: 'light' });
  await page.goto(`${server.url}/signin`);
  await page.getByRole('heading', { level: 1, name: 'Sign in to pawpost' }).waitFor();
  await page.waitForLoadState('networkidle');
  await page.evaluate(
    async ({ code, householdName, createdAt }) => {
      const { renderRecoverySheet, confirmSavedPrompt } = await import('/js/views/recovery-sheet.js');
      const sheet = renderRecoverySheet({ householdName, code, createdAt });
      const prompt = confirmSavedPrompt(code, { groups: [3, 6] });
      const form = document.createElement('form');
      form.className = 'confirm-saved';
      form.append(prompt.element);
      const view = document.querySelector('#app .view') ?? document.querySelector('#app');
      view?.append(sheet, form);
      /** @type {any} */ (window).recoveryPrompt = prompt;
      // Printing is counted instead of opening the print dialog.
      /** @type {any} */ (window).printed = 0;
      window.print = () => {
        /** @type {any} */ (window).printed++;
      };
    },
    { code: CODE, householdName: HOUSEHOLD, createdAt: CREATED_AT },
  );
  return page.locator('section.recovery-sheet');
}

test('the sheet shows the title, the code in groups, its QR code, the date, the instructions and a Print button', async () => {
  const page = browser.page;
  const sheet = await showSheet(page);
  await sheet.getByRole('heading', { level: 2, name: `Recovery code for ${HOUSEHOLD}` }).waitFor();
  const text = await sheet.innerText();
  // The code reads as one line of groups (copying it gives the code), each group numbered.
  assert.ok(text.includes(CODE), `the code on the sheet:\n${text}`);
  const groups = await sheet.locator('.recovery-code-group').allTextContents();
  assert.deepEqual(groups, CODE.split('-'));
  // Each group has its number under it (a CSS counter, so it is not part of the code's text).
  const numbers = await sheet.locator('.recovery-code-group').evaluateAll((els) => els.map((el) => getComputedStyle(el, '::after').content));
  for (const n of numbers) assert.match(n, /counter\(recovery-group\)/);
  const family = await sheet.locator('.recovery-code').evaluate((el) => getComputedStyle(el).fontFamily);
  assert.match(family, /monospace/);
  const made = new Date(CREATED_AT).toLocaleDateString('en-GB', { dateStyle: 'long' });
  assert.ok(text.includes(`Made on ${made}`), `the date (${made}) on the sheet:\n${text}`);
  for (const line of INSTRUCTIONS) assert.ok(text.includes(line), `"${line}" on the sheet:\n${text}`);
  const qr = sheet.getByRole('img', { name: `QR code of the recovery code for ${HOUSEHOLD}` });
  await qr.waitFor();
  assert.equal(await qr.locator('path').count(), 1);
  await sheet.getByRole('button', { name: 'Print' }).click();
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).printed), 1);
  await screenshot(page, 'recovery-sheet');
  assert.deepEqual(browser.errors, []);
});

test("the sheet's QR code is the standard symbol of the code: level M, and module by module qrcode's with the same mask", async () => {
  const page = browser.page;
  const sheet = await showSheet(page);
  const drawn = await sheet.locator('svg.qr-code').evaluate((svg) => ({
    size: Number(svg.getAttribute('data-modules')),
    quiet: Number(svg.getAttribute('data-quiet-zone')),
    viewBox: svg.getAttribute('viewBox'),
    background: svg.querySelector('rect')?.getAttribute('fill'),
    fill: svg.querySelector('path')?.getAttribute('fill'),
    pathFill: getComputedStyle(/** @type {Element} */ (svg.querySelector('path'))).fill,
    d: svg.querySelector('path')?.getAttribute('d') ?? '',
  }));
  assert.equal(drawn.quiet, 4);
  assert.equal(drawn.viewBox, `0 0 ${drawn.size + 8} ${drawn.size + 8}`);
  assert.equal(drawn.background, '#fff');
  assert.equal(drawn.pathFill, 'rgb(0, 0, 0)');
  // The path's rectangles back into modules.
  const matrix = Array.from({ length: drawn.size }, () => new Array(drawn.size).fill(false));
  const runs = [...drawn.d.matchAll(/M(\d+) (\d+)h(\d+)v1h-(\d+)z/g)];
  assert.equal(runs.map((m) => m[0]).join(''), drawn.d, 'the path is only rectangles one module high');
  for (const [, x, y, run] of runs) {
    for (let i = 0; i < Number(run); i++) matrix[Number(y) - drawn.quiet][Number(x) - drawn.quiet + i] = true;
  }
  // The format information next to the top-left finder: level and mask.
  const cells = [[0, 8], [1, 8], [2, 8], [3, 8], [4, 8], [5, 8], [7, 8], [8, 8], [8, 7], [8, 5], [8, 4], [8, 3], [8, 2], [8, 1], [8, 0]];
  const format = cells.reduce((bits, [r, c], i) => bits | (Number(matrix[r][c]) << i), 0) ^ FORMAT_MASK;
  assert.equal(format >> 13, LEVEL_M, 'error correction level M');
  const mask = (format >> 10) & 0b111;
  const reference = QRCode.create([{ data: CODE, mode: 'byte' }], { errorCorrectionLevel: 'M', maskPattern: mask }).modules;
  assert.equal(drawn.size, reference.size);
  for (let r = 0; r < drawn.size; r++) {
    for (let c = 0; c < drawn.size; c++) assert.equal(matrix[r][c], Boolean(reference.get(r, c)), `module at row ${r}, column ${c}`);
  }
});

test('the sheet and the prompt pass the accessibility checker, in light and in dark', async () => {
  const page = browser.page;
  await showSheet(page);
  await expectAccessible(page, 'recovery sheet (light)');
  await page.emulateMedia({ colorScheme: 'dark' });
  await expectAccessible(page, 'recovery sheet (dark)');
  // The QR code stays black on white in dark mode.
  const colours = await page.locator('svg.qr-code').evaluate((svg) => ({
    background: getComputedStyle(/** @type {Element} */ (svg.querySelector('rect'))).fill,
    modules: getComputedStyle(/** @type {Element} */ (svg.querySelector('path'))).fill,
  }));
  assert.deepEqual(colours, { background: 'rgb(255, 255, 255)', modules: 'rgb(0, 0, 0)' });
  await screenshot(page, 'recovery-sheet-dark');
});

test('printed, the page shows only the sheet, black on white, without its Print button', async () => {
  const page = browser.page;
  const sheet = await showSheet(page);
  const header = page.locator('header.top');
  const signIn = page.getByRole('heading', { level: 1, name: 'Sign in to pawpost' });
  const form = page.locator('form.confirm-saved');
  const printButton = sheet.getByRole('button', { name: 'Print' });
  for (const shown of [header, signIn, form, printButton, sheet]) assert.ok(await shown.isVisible(), 'on screen, the whole page shows');

  await page.emulateMedia({ media: 'print', colorScheme: 'dark' });
  for (const hidden of [header, signIn, form, printButton, page.getByLabel('Email')]) {
    assert.equal(await hidden.isVisible(), false, `printed: ${hidden} is left out`);
  }
  for (const shown of [sheet, sheet.locator('svg.qr-code'), sheet.locator('.recovery-code'), sheet.getByRole('heading', { name: `Recovery code for ${HOUSEHOLD}` })]) {
    assert.ok(await shown.isVisible(), `printed: ${shown} shows`);
  }
  // Nothing outside the sheet (or holding it) takes any room on the paper.
  const visibleOutside = await page.evaluate(() => {
    const sheetEl = /** @type {Element} */ (document.querySelector('.recovery-sheet'));
    return [...document.body.querySelectorAll('*')]
      .filter((el) => !sheetEl.contains(el) && !el.contains(sheetEl))
      .filter((el) => el.getClientRects().length > 0)
      .map((el) => el.outerHTML.slice(0, 80));
  });
  assert.deepEqual(visibleOutside, []);
  const colours = await sheet.evaluate((el) => ({ text: getComputedStyle(el).color, code: getComputedStyle(/** @type {Element} */ (el.querySelector('.recovery-code'))).color }));
  assert.deepEqual(colours, { text: 'rgb(0, 0, 0)', code: 'rgb(0, 0, 0)' });
  const pdf = await page.pdf({ format: 'A4' });
  assert.ok(pdf.length > 1000, 'the sheet prints');

  await page.emulateMedia({ media: 'screen', colorScheme: 'light' });
  assert.ok(await header.isVisible(), 'back on screen, the header shows again');
});

test('the prompt asks for two groups and accepts them in lower case, with spaces or hyphens, O for 0 and I or L for 1', async () => {
  const page = browser.page;
  await showSheet(page);
  const form = page.locator('form.confirm-saved');
  assert.ok(await form.getByText('To show that you saved your code, type group 3 and group 6 of your code.').isVisible());
  const group3 = form.getByLabel('Group 3', { exact: true });
  const group6 = form.getByLabel('Group 6', { exact: true });
  const check = () => page.evaluate(() => /** @type {any} */ (window).recoveryPrompt.check());

  // Wrong: nothing, the groups swapped, a group off by one character, another group.
  assert.equal(await check(), false);
  await group3.fill('P1CE');
  await group6.fill('40TN');
  assert.equal(await check(), false, 'the groups swapped');
  await group3.fill('40TM');
  await group6.fill('P1CE');
  assert.equal(await check(), false, 'one character wrong');
  await page.evaluate(() => /** @type {any} */ (window).recoveryPrompt.showError('Those are not the groups of your code.'));
  const error = form.locator('#' + (await group3.getAttribute('id')) + '-error');
  assert.equal(await error.textContent(), 'Those are not the groups of your code.');
  assert.equal(await group3.getAttribute('aria-invalid'), 'true');
  assert.equal(await group6.getAttribute('aria-invalid'), null, 'group 6 was right');
  await group3.fill('B2WD');
  assert.equal(await check(), false, 'group 4 typed for group 3');

  // Right, however typed.
  await group3.fill(' 4o tn ');
  await group6.fill('p-l-c-e');
  assert.equal(await check(), true);
  await group6.fill('pice');
  assert.equal(await check(), true);
  await page.evaluate(() => /** @type {any} */ (window).recoveryPrompt.showError(''));
  assert.equal(await error.textContent(), '');
  assert.equal(await group3.getAttribute('aria-invalid'), null);

  // Given the two groups as arguments.
  const given = await page.evaluate(() => {
    const prompt = /** @type {any} */ (window).recoveryPrompt;
    return [prompt.check('40tn', 'p1ce'), prompt.check('40 TN', 'PLCE'), prompt.check('40tn', 'p1cf'), prompt.check('', '')];
  });
  assert.deepEqual(given, [true, true, false, false]);
});

test('by default the prompt asks for two different groups of the eight, drawn at random', async () => {
  const page = browser.page;
  await showSheet(page);
  const asked = await page.evaluate(async (code) => {
    const { confirmSavedPrompt } = await import('/js/views/recovery-sheet.js');
    return Array.from({ length: 40 }, () => {
      const prompt = confirmSavedPrompt(code);
      const labels = [...prompt.element.querySelectorAll('label')].map((l) => l.textContent);
      return { groups: prompt.groups, labels, question: prompt.element.querySelector('p')?.textContent };
    });
  }, CODE);
  const seen = new Set();
  for (const { groups, labels, question } of asked) {
    assert.equal(groups.length, 2);
    assert.ok(groups[0] < groups[1] && groups[0] >= 1 && groups[1] <= 8, `${groups}`);
    assert.deepEqual(labels, groups.map((/** @type {number} */ n) => `Group ${n}`));
    assert.equal(question, `To show that you saved your code, type group ${groups[0]} and group ${groups[1]} of your code.`);
    seen.add(groups.join());
  }
  assert.ok(seen.size > 5, `not always the same groups: ${[...seen].join(' ')}`);
});
