// Keys that survive family life, in a real Chromium with a fake microphone, a real server
// and the simulated toy:
// (a) the parent saves the household's recovery code, loses the browser, and in a fresh
//     one enters the code, approves a new relative, whose message the toy plays;
// (c) grandpa's second browser is linked by a code from his first and can send, while a
//     device the server lists for him without a certificate never enters the roster;
// (d) whoever resets grandpa's password gets his account, not his keys: a new browser
//     cannot reach the toy without a parent's approval.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { apiGet, makeVoiceWav, openBrowser, screenshot, signUp, startServer, startToy, statusSays, STRONG, StoryFamily } from './harness.js';

/** The password whoever took over grandpa's mailbox sets (story d). */
const THIEF_PASSWORD = 'mailbox thief picks seven locks';
/** How long a story waits for the server to write a mail. */
const MAIL_WAIT_MS = 15000;

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>[]} */
const browsers = [];
/** @type {ReturnType<typeof startToy>} */
let toy;
/** @type {StoryFamily} */
let family;
let work = '';
let wav = '';
let recoveryCode = '';

/** A browser with a fresh profile, closed after the stories. */
async function freshBrowser() {
  const b = await openBrowser(wav);
  browsers.push(b);
  return b;
}

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-recovery-story-'));
  wav = makeVoiceWav(work, 'Hello sweetheart, this is your family. Sleep well.');
  toy = startToy(server, join(work, 'toy'));
  family = new StoryFamily(server, {
    parent: { browser: await freshBrowser(), email: 'lena@example.com', name: 'Lena' },
    relative: { browser: await freshBrowser(), email: 'grandpa.otto@example.com', name: 'Grandpa Otto' },
    household: 'The Brandts',
    child: 'Emil',
  });
});

after(async () => {
  toy?.stop();
  for (const b of browsers) await b.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * Signs `person` in on `page` with their password.
 * @param {import('playwright-core').Page} page
 * @param {string} email
 * @param {string} [password]
 */
async function signIn(page, email, password = STRONG) {
  await page.goto(`${server.url}/signin`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { name: 'Your households' }).waitFor();
}

/**
 * Records about two seconds on `page`'s household page and sends it to the toy.
 * @param {import('playwright-core').Page} page
 */
async function recordAndSend(page) {
  await page.goto(family.url);
  await page.getByRole('heading', { name: 'Messages with Emil' }).waitFor();
  await page.getByRole('button', { name: 'Record' }).click();
  await page.waitForTimeout(2000);
  await page.getByRole('button', { name: 'Stop' }).click();
  await page.locator('.recorder[data-recorded]').waitFor();
  await page.getByRole('button', { name: 'Send to Emil' }).click();
  await statusSays(page, 'Sent.', server);
  await page.locator('li.message.mine').first().locator('[data-state=delivered], [data-state=heard]').waitFor({ timeout: 30000 });
}

/**
 * The device ids in the household's current roster, decoded by the page's own code.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<{ deviceId: string, role: string, status: string }[]>}
 */
async function rosterMembers(page) {
  return page.evaluate(async (householdId) => {
    const crypto = await import('/js/crypto/index.js');
    const util = await import('/js/util.js');
    const view = await (await fetch(`/api/v1/households/${householdId}/roster`)).json();
    const signed = crypto.decodeSignedRoster(util.fromB64url(view.signed_roster));
    return signed.roster.members.map((/** @type {any} */ m) => ({ deviceId: util.bytesUuid(m.deviceId), role: m.role, status: m.status }));
  }, family.householdId);
}

/**
 * Waits for the toy to play a message whose sender is `deviceId`.
 * @param {string} deviceId
 * @param {number} from toy output position
 */
async function toyPlaysFrom(deviceId, from) {
  toy.tell('press');
  await toy.says(/played message \S+ -> \S+\.ogg/, { from, timeoutMs: 30000 });
  const out = toy.output().slice(from);
  assert.ok(!/roster refused/i.test(out), `the toy refused a roster:\n${out}`);
  return deviceId;
}

test('(a) the parent saves the recovery code, loses the browser, and looks after the household again from a new one', { timeout: 300000 }, async () => {
  await family.ensurePairedToy(toy);
  const page = family.parent.browser.page;
  await page.goto(`${family.url}/family`);
  await page.getByText('has no recovery code yet').waitFor();
  await page.getByRole('link', { name: 'Make a recovery code' }).click();
  await page.getByRole('button', { name: 'Make a recovery code' }).click();
  const sheetText = await page.locator('section.recovery').innerText();
  recoveryCode = /[0-9A-Z]{4}(?:[- ][0-9A-Z]{4}){7}/.exec(sheetText)?.[0] ?? '';
  assert.ok(recoveryCode, `a code on the sheet:\n${sheetText}`);
  await page.locator('section.recovery svg').first().waitFor();
  await screenshot(page, 'recovery-code-sheet');
  const groups = recoveryCode.split(/[- ]/);
  // The parent types back the groups asked for.
  const confirm = page.locator('form.confirm-saved');
  const asked = await confirm.locator('input').all();
  assert.ok(asked.length >= 1, 'the page asks for part of the code');
  for (const input of asked) {
    const label = await input.evaluate((el) => /** @type {HTMLInputElement} */ (el).labels?.[0]?.textContent ?? '');
    const n = Number(/(\d)/.exec(label)?.[1]);
    assert.ok(n >= 1 && n <= 8, `the field says which group: ${label}`);
    await input.fill(groups[n - 1].toLowerCase());
  }
  await confirm.getByRole('button').last().click();
  await statusSays(page, 'Your recovery code is in force', server);
  const withRecovery = await rosterMembers(page);
  assert.equal(withRecovery.filter((m) => m.role === 'recovery').length, 1);
  const oldParentDevice = withRecovery.find((m) => m.role === 'owner')?.deviceId;

  // The browser is gone, with its keys.
  await family.parent.browser.close();
  const fresh = await freshBrowser();
  family.parent.browser = fresh;
  const p = fresh.page;
  await signIn(p, family.parent.email);
  await p.goto(family.url);
  await p.getByText('This browser cannot send or open messages here yet').waitFor();
  await screenshot(p, 'recovery-new-browser');
  await p.getByRole('link', { name: 'Enter your recovery code' }).click();
  // A wrong code is refused beside the field.
  await p.getByLabel('Recovery code').fill('AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA');
  await p.getByRole('button', { name: 'Use the code' }).click();
  await p.locator('.field .error').filter({ hasText: "is not The Brandts's current recovery code" }).waitFor();
  await p.getByLabel('Recovery code').fill(recoveryCode.toLowerCase().replace(/-/g, ' '));
  await p.getByRole('checkbox').first().check();
  await p.getByRole('button', { name: 'Use the code' }).click();
  await p.getByText('This browser now looks after The Brandts').waitFor();
  const after = await rosterMembers(p);
  const newDevice = await apiGet(p, server, '/api/v1/devices');
  const mine = newDevice.find((/** @type {any} */ d) => after.some((m) => m.deviceId === d.device_id && m.role === 'owner'));
  assert.ok(mine, 'the new browser is an owner device in the roster');
  assert.ok(!after.some((m) => m.deviceId === oldParentDevice), 'the lost device is taken out');
  const listed = await apiGet(p, server, '/api/v1/devices');
  assert.ok(!listed.some((/** @type {any} */ d) => d.device_id === oldParentDevice), 'and off the account, so nobody is asked to approve it again');

  // The child's name was sealed before this browser existed: the parent types it again.
  await p.getByText("Your child's name was saved on a device this browser cannot read").waitFor();
  await p.getByLabel("Child's name").fill('Emil');
  await p.getByRole('button', { name: 'Save name', exact: true }).click();
  await statusSays(p, 'The name is saved', server);

  // The new browser approves a new relative; the toy plays her message.
  const aunt = await freshBrowser();
  await p.goto(`${family.url}/family`);
  await p.getByRole('button', { name: 'Create invitation link' }).click();
  const invite = await p.getByLabel('Invitation link').inputValue();
  await aunt.page.goto(invite);
  await signUp(aunt.page, { email: 'aunt.mia@example.com', name: 'Aunt Mia' });
  await aunt.page.getByText('has to approve you').waitFor();
  await p.goto(`${family.url}/family`);
  await p.locator('li.member', { hasText: 'Aunt Mia' }).getByRole('button', { name: /^Approve Aunt Mia/ }).click();
  await statusSays(p, 'Aunt Mia is approved.', server);
  const roster = await rosterMembers(p);
  const version = Number((await apiGet(p, server, `/api/v1/households/${family.householdId}/roster`)).version);
  await toy.hasRoster(version);
  const auntDevices = await apiGet(aunt.page, server, '/api/v1/devices');
  assert.ok(roster.some((m) => m.deviceId === auntDevices[0].device_id && m.status === 'approved'));
  const from = toy.output().length;
  await recordAndSend(aunt.page);
  await toyPlaysFrom(auntDevices[0].device_id, from);
  assert.deepEqual(fresh.errors, []);
});

test('(c) grandpa links a second browser from his first; a device the server lists without a certificate stays out', { timeout: 300000 }, async () => {
  await family.ensurePairedToy(toy);
  const first = family.relative.browser.page;
  const second = await freshBrowser();
  await signIn(second.page, family.relative.email);
  await second.page.goto(family.url);
  await second.page.getByText('This browser cannot send or open messages here yet').waitFor();
  await second.page.goto(`${server.url}/security`);
  const code = (await second.page.locator('.link-code').textContent())?.trim() ?? '';
  assert.match(code, /^\d{4} \d{4} \d{4} \d{4}$/);

  await first.goto(`${server.url}/security`);
  await first.getByLabel('Link a new browser: the code it shows').fill(code);
  await first.getByRole('button', { name: 'Link', exact: true }).click();
  await statusSays(first, 'Linked', server);

  // A device the server lists for grandpa with no certificate (as a server that lied would).
  const extra = await second.page.evaluate(async () => {
    const crypto = await import('/js/crypto/index.js');
    const util = await import('/js/util.js');
    const id = util.randomUuidBytes();
    const keys = await crypto.generateDeviceKeys(id);
    const { api } = await import('/js/api.js');
    // The page's own API module carries its session's CSRF token.
    const made = await api('POST', '/api/v1/devices', { identity: util.toB64url(crypto.encodePublicIdentity(keys.public)), label: 'Not really grandpa' });
    const r = { status: made.device_id === util.bytesUuid(id) ? 201 : 0 };
    return { status: r.status, id: util.bytesUuid(id) };
  });
  assert.equal(extra.status, 201, 'the extra device is registered');

  // The parent's device signs the linked browser in, and leaves the other one waiting.
  const p = family.parent.browser.page;
  await p.goto(`${family.url}/family`);
  await p.locator('li.member', { hasText: 'Grandpa Otto' }).locator('.device-waiting').waitFor();
  const roster = await rosterMembers(p);
  const secondId = (await apiGet(second.page, server, '/api/v1/devices')).find((/** @type {any} */ d) => d.certificate)?.device_id;
  assert.ok(secondId && roster.some((m) => m.deviceId === secondId && m.status === 'approved'), 'the linked browser is in the roster');
  assert.ok(!roster.some((m) => m.deviceId === extra.id), 'the uncertified device is not in the roster');
  await screenshot(p, 'recovery-device-waiting');

  const version = Number((await apiGet(p, server, `/api/v1/households/${family.householdId}/roster`)).version);
  await toy.hasRoster(version);
  const from = toy.output().length;
  await recordAndSend(second.page);
  await toyPlaysFrom(secondId, from);
});

/**
 * The body of the newest mail to `to` with `subject` in the server's outbox.
 * @param {string} to
 * @param {string} subject
 */
async function mail(to, subject) {
  const dir = join(server.dataDir, 'data', 'outbox');
  const end = Date.now() + MAIL_WAIT_MS;
  for (;;) {
    const found = (existsSync(dir) ? readdirSync(dir) : [])
      .filter((name) => name.endsWith('.eml'))
      .map((name) => readFileSync(join(dir, name), 'utf8'))
      .filter((raw) => raw.includes(`To: ${to}\r\n`) && raw.includes(`Subject: ${subject}\r\n`));
    if (found.length) return found[found.length - 1].replace(/=\r\n/g, '');
    if (Date.now() > end) throw new Error(`no mail "${subject}" to ${to}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('(d) whoever resets grandpa\'s password gets his account, not a way to the toy', { timeout: 200000 }, async () => {
  await family.ensurePairedToy(toy);
  const intruder = await freshBrowser();
  const page = intruder.page;
  await page.goto(`${server.url}/forgot`);
  await page.getByLabel('Your email address').fill(family.relative.email);
  await page.getByRole('button', { name: 'Send me a link' }).click();
  const link = /(http:\/\/127\.0\.0\.1:\d+\/reset#[A-Za-z0-9_-]+)/.exec(await mail(family.relative.email, 'Choose a new pawpost password'))?.[1];
  assert.ok(link, 'a reset link');
  await page.goto(link);
  await page.getByLabel('Your new password').fill(THIEF_PASSWORD);
  await page.getByRole('button', { name: 'Set my new password' }).click();
  await page.getByRole('heading', { name: 'Your households' }).or(page.getByRole('heading', { name: 'Sign in to pawpost' })).first().waitFor();
  if (await page.getByRole('heading', { name: 'Sign in to pawpost' }).isVisible()) await signIn(page, family.relative.email, THIEF_PASSWORD);
  await page.goto(family.url);
  await page.getByText('This browser cannot send or open messages here yet').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Record' }).count(), 0, 'no recorder without keys');

  // The parent's device does not sign the new browser in on its own.
  const p = family.parent.browser.page;
  await p.goto(`${family.url}/family`);
  await p.locator('li.member', { hasText: 'Grandpa Otto' }).locator('.device-waiting').first().waitFor();
  const theirs = await apiGet(page, server, '/api/v1/devices');
  const roster = await rosterMembers(p);
  const newest = [...theirs].sort((a, b) => (a.created_at < b.created_at ? 1 : -1))[0];
  assert.ok(!roster.some((m) => m.deviceId === newest.device_id), "the reset account's new browser is not in the roster");
  // The reset ended grandpa's own sessions too; later stories sign him in again.
  assert.equal(await apiGet(family.relative.browser.page, server, '/api/v1/sessions/current'), null, "grandpa's other sessions ended");
  family.relative.password = THIEF_PASSWORD;
});

test('a second owner: the parent makes grandpa an owner, whose device then signs the household keys the toy follows', { timeout: 200000 }, async () => {
  await family.ensurePairedToy(toy);
  const p = family.parent.browser.page;
  await p.goto(`${family.url}/family`);
  const owners = (await rosterMembers(p)).filter((m) => m.role === 'owner');
  if (owners.length === 1) await p.locator('.single-owner').waitFor();
  await p.getByLabel('Role of Grandpa Otto').selectOption('owner');
  await statusSays(p, 'Grandpa Otto is now Owner (parent).', server);
  assert.equal(await p.locator('.single-owner').count(), 0, 'no longer a single owner device');

  const g = family.relative.browser.page;
  await family.ensureSignedIn(family.relative);
  await g.goto(`${family.url}/family`);
  await g.getByRole('heading', { name: 'Family and settings' }).waitFor();
  await g.locator('.household-line').filter({ hasText: 'The Brandts' }).waitFor();
  await screenshot(g, 'recovery-second-owner');
  await g.getByLabel('Delete played messages after (days)').fill('12');
  await g.getByRole('button', { name: 'Save settings' }).click();
  await statusSays(g, 'Settings saved.', server);
  const view = await apiGet(g, server, `/api/v1/households/${family.householdId}/roster`);
  await toy.hasRoster(Number(view.version));
  assert.ok(!/roster refused/i.test(toy.output()), 'the toy took the new owner\'s keys');
});
