// (b) A parent who signs in with a passkey gets the household back without typing the
// recovery code: the code is kept with the passkey (encrypted with a key from its PRF
// output, which never leaves the browser). The browser's site data is then cleared, as
// Safari does after 7 days without a visit, while the passkey stays in the device's
// authenticator (Chromium's virtual one, with PRF). Signed in again with the passkey, the
// parent restores owner powers with one press, approves a new relative, and the toy
// plays her message.
//
// Browsers refuse an IP address as a passkey's site, so the pages are opened at
// http://localhost:PORT.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { apiGet, CHROMIUM, makeVoiceWav, openBrowser, requireBinary, screenshot, signUp, startServer, startToy, statusSays, StoryFamily } from './harness.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof openBrowser>>[]} */
const others = [];
/** @type {ReturnType<typeof startToy>} */
let toy;
let site = '';
let work = '';
let wav = '';

before(async () => {
  requireBinary();
  server = await startServer();
  site = server.url.replace('127.0.0.1', 'localhost');
  work = mkdtempSync(join(tmpdir(), 'pawpost-passkey-recovery-'));
  wav = makeVoiceWav(work, 'Hello darling, it is your aunt. Good night.');
  toy = startToy(server, join(work, 'toy'));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30000,
  });
});

after(async () => {
  toy?.stop();
  for (const b of others) await b.close();
  await browser?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * A relative's browser (fake microphone) that opens the pages at localhost too.
 */
async function relativeBrowser() {
  const b = await openBrowser(wav);
  others.push(b);
  // The harness keeps a browser on 127.0.0.1; these stories' pages are at localhost.
  await b.context.unroute(/^(?!http:\/\/127\.0\.0\.1[:/]).*/);
  await b.context.route(/^(?!http:\/\/(127\.0\.0\.1|localhost)[:/]).*/, (route) => route.abort());
  return b;
}

test('(b) a passkey with PRF brings a cleared browser back to owner powers without typing the code', { timeout: 300000 }, async () => {
  const context = await browser.newContext({ viewport: { width: 420, height: 860 } });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, hasPrf: true, automaticPresenceSimulation: true },
  });
  const relative = await relativeBrowser();
  const local = { url: site, log: server.log };
  const family = new StoryFamily(local, {
    parent: { browser: { context, page, errors, close: () => context.close() }, email: 'ines@example.com', name: 'Ines' },
    relative: { browser: relative, email: 'opa.jo@example.com', name: 'Opa Jo' },
    household: 'The Vogels',
    child: 'Lotte',
  });

  // The parent signs up with a passkey, makes the household and pairs the toy.
  await page.goto(`${site}/signup`);
  await page.getByLabel('Email').fill('ines@example.com');
  await page.getByLabel('Your name (as your family knows you)').fill('Ines');
  await page.getByRole('button', { name: 'Sign up with a passkey' }).click();
  await page.getByRole('heading', { name: 'Your households' }).waitFor();
  await family.ensurePairedToy(toy);

  // The recovery code, made in a page where the passkey signed in (so its key is here).
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.getByRole('heading', { name: 'Your households' }).waitFor();
  await page.getByRole('link', { name: 'The Vogels' }).first().click();
  await page.getByRole('link', { name: 'Family, toy and settings' }).click();
  await page.getByRole('link', { name: 'Make a recovery code' }).click();
  await page.getByRole('button', { name: 'Make a recovery code' }).click();
  const code = /[0-9A-Z]{4}(?:-[0-9A-Z]{4}){7}/.exec(await page.locator('section.recovery').innerText())?.[0] ?? '';
  assert.ok(code, 'a code on the sheet');
  const groups = code.split('-');
  for (const input of await page.locator('form.confirm-saved input').all()) {
    const label = await input.evaluate((el) => /** @type {HTMLInputElement} */ (el).labels?.[0]?.textContent ?? '');
    await input.fill(groups[Number(/(\d)/.exec(label)?.[1]) - 1]);
  }
  await page.getByRole('button', { name: 'I saved it: use this code' }).click();
  await statusSays(page, 'Your passkey also keeps it', local);

  // Site data cleared: keys, pinned roster and session are gone; the passkey is not.
  await cdp.send('Storage.clearDataForOrigin', { origin: site, storageTypes: 'all' });
  await context.clearCookies();
  await page.goto(`${site}/signin`);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.getByRole('heading', { name: 'Your households' }).waitFor();
  await page.getByRole('link', { name: 'The Vogels' }).first().click();
  await page.getByText('This browser cannot send or open messages here yet').waitFor();
  await page.getByRole('link', { name: 'Enter your recovery code' }).click();
  await page.getByRole('button', { name: 'Use the code your passkey keeps' }).click();
  await page.getByText('This browser now looks after The Vogels').waitFor();
  await screenshot(page, 'recovery-by-passkey');
  assert.equal(await page.getByLabel('Recovery code').count(), 0, 'nothing typed');

  // The restored browser approves a new relative; the toy plays her message.
  const aunt = await relativeBrowser();
  await page.goto(`${family.url}/family`);
  await page.getByRole('button', { name: 'Create invitation link' }).click();
  const invite = (await page.getByLabel('Invitation link').inputValue()).replace('127.0.0.1', 'localhost');
  await aunt.page.goto(invite);
  await signUp(aunt.page, { email: 'tante.uta@example.com', name: 'Tante Uta' });
  await aunt.page.getByText('has to approve you').waitFor();
  await page.goto(`${family.url}/family`);
  await page.locator('li.member', { hasText: 'Tante Uta' }).getByRole('button', { name: /^Approve Tante Uta/ }).click();
  await statusSays(page, 'Tante Uta is approved.', local);
  const version = Number((await apiGet(page, local, `/api/v1/households/${family.householdId}/roster`)).version);
  await toy.hasRoster(version);

  await aunt.page.goto(family.url);
  await aunt.page.getByRole('button', { name: 'Record' }).click();
  await aunt.page.waitForTimeout(2000);
  await aunt.page.getByRole('button', { name: 'Stop' }).click();
  await aunt.page.locator('.recorder[data-recorded]').waitFor();
  await aunt.page.getByRole('button', { name: /^Send to / }).click();
  await statusSays(aunt.page, 'Sent.', local);
  await aunt.page.locator('li.message.mine').first().locator('[data-state=delivered], [data-state=heard]').waitFor({ timeout: 30000 });
  const from = toy.output().length;
  toy.tell('press');
  await toy.says(/played message \S+ -> \S+\.ogg/, { from, timeoutMs: 30000 });
  assert.ok(!/roster refused/i.test(toy.output()), `the toy refused no roster:\n${toy.output()}`);
  assert.deepEqual(errors, []);
  await context.close();
});
