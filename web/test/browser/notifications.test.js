// Notification mails in a real Chromium against a real server: the Security page's
// "Email me when…" switches save at once, say so beside themselves and survive a reload;
// the family page emails an invitation, says so beside the address, and the mail (read
// from the server's outbox folder) holds the same link the page shows. Then each of the
// five kinds, caused by what people do in their browsers and the simulated toy, arrives
// as a mail in the outbox: the invitation (emailed from the family page), someone waiting
// for approval (a grandmother joins), you were approved (the parent approves her), the
// child replied (the toy records a reply), and a message that could not be played (the
// toy refuses grandma's message: her recorder is made to hand over bytes that are not a
// recording, which the browser seals and the server stores as any message, and which only
// the toy can find broken). Every mail names neither the child nor what was said, uses
// plain words, links to the app, and carries a one-click unsubscribe (RFC 8058) that
// switches its kind off, as the Security page then shows. Last, the same through a real
// SMTP server (Python's aiosmtpd, started here): missing, it fails the story under CI or
// PAWPOST_REQUIRE_SMTP=1, and is skipped loudly otherwise.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { apiGet, expectAccessible, makeVoiceWav, openBrowser, REPO, screenshot, startServer, startToy, StoryFamily } from './harness.js';

const REPLY = join(REPO, 'crates/pawpost-media/tests/fixtures/hello-mono-20ms.ogg');

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let parent;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let gran;
/** @type {ReturnType<typeof startToy> | undefined} */
let toy;
/** @type {StoryFamily} */
let family;
let work = '';

const MAIL_WAIT_MS = 15000;
const AUNT = 'aunt.ines@example.com';
const GRAN = 'leila@example.com';
const CHILD = 'Sami';
/** What grandma's broken message holds instead of a recording. */
const BROKEN = 'this is not a recording';

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-notifications-story-'));
  const wav = makeVoiceWav(work, 'Hello.');
  parent = await openBrowser(wav);
  // Her recorder's module is swapped for one story: no service worker may answer for it.
  gran = await openBrowser(wav, { serviceWorkers: 'block' });
  family = new StoryFamily(server, {
    parent: { browser: parent, email: 'noor@example.com', name: 'Noor' },
    relative: { browser: gran, email: GRAN, name: 'Grandma Leila' },
    household: 'The Haddads',
    child: CHILD,
  });
});

after(async () => {
  toy?.stop();
  await gran?.close();
  await parent?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * @typedef {{ headers: Map<string, string>, text: string }} Mail
 */

/**
 * A mail as written to the outbox (CRLF) or by aiosmtpd's Maildir (LF): its headers,
 * unfolded and named in lower case, and its text, quoted-printable decoded.
 * @param {string} raw
 * @returns {Mail}
 */
function parseMail(raw) {
  const split = /\r?\n\r?\n/.exec(raw);
  const head = split ? raw.slice(0, split.index) : raw;
  const body = split ? raw.slice(split.index + split[0].length) : '';
  /** @type {Map<string, string>} */
  const headers = new Map();
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const bytes = Buffer.from(body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
  return { headers, text: bytes.toString('utf8').replace(/\r\n/g, '\n') };
}

/**
 * Every mail in `dir` (`.eml` files of the outbox, or a Maildir's `new` folder).
 * @param {string} dir
 */
function mailsIn(dir) {
  return (existsSync(dir) ? readdirSync(dir) : []).map((name) => parseMail(readFileSync(join(dir, name), 'utf8')));
}

/**
 * Waits for a mail to `to` in `dir` whose text holds `needle`.
 * @param {string} dir
 * @param {string} to
 * @param {string} needle
 * @param {{ log: () => string }} [from] the server, whose log a failure shows
 * @returns {Promise<Mail>}
 */
async function waitForMail(dir, to, needle, from = server) {
  const end = Date.now() + MAIL_WAIT_MS;
  for (;;) {
    const found = mailsIn(dir).find((m) => m.headers.get('to') === to && m.text.includes(needle));
    if (found) return found;
    if (Date.now() > end) throw new Error(`no mail to ${to} with "${needle}" in ${dir}; server log:\n${from.log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const outbox = () => join(server.dataDir, 'data', 'outbox');

/**
 * Waits for a mail to `to` in the outbox whose text holds `needle`; returns its text.
 * @param {string} to
 * @param {string} needle
 */
async function mailTo(to, needle) {
  return (await waitForMail(outbox(), to, needle)).text;
}

/**
 * What every notification mail must be: no child's name and nothing that was said, plain
 * words (no internal codes outside its links), links into the app, and RFC 8058's
 * one-click unsubscribe headers. Returns its unsubscribe link.
 * @param {Mail} mail
 * @param {{ url: string }} at the server
 * @param {string} child
 */
function checkNotification(mail, at, child) {
  const text = mail.text;
  assert.ok(!text.includes(child), `never the child's name:\n${text}`);
  assert.ok(!text.includes(BROKEN), `never what a message holds:\n${text}`);
  const words = text.replace(/https?:\/\/\S+/g, '');
  assert.doesNotMatch(words, /\b[a-z]+_[a-z_]+\b/, `no internal codes in the words:\n${text}`);
  assert.doesNotMatch(words, /[0-9a-f]{8}-[0-9a-f]{4}-/, `no ids in the words:\n${text}`);
  assert.doesNotMatch(words, /\b(roster|envelope|device key|household id|null|undefined)\b/i, `plain words:\n${text}`);
  assert.ok(text.includes(`${at.url}/security`), `the mail says where the switches are:\n${text}`);
  const listed = /^<(https?:\/\/[^>]+)>$/.exec(mail.headers.get('list-unsubscribe') ?? '');
  assert.ok(listed, `List-Unsubscribe holds one link: ${mail.headers.get('list-unsubscribe')}`);
  assert.equal(mail.headers.get('list-unsubscribe-post'), 'List-Unsubscribe=One-Click');
  const link = listed[1];
  assert.ok(link.startsWith(`${at.url}/api/v1/notifications/unsubscribe?token=`), link);
  assert.ok(text.includes(link), 'the same link is in the text, for a person to open');
  return link;
}

/**
 * Opens the mail's link to the app (the first one that is neither the unsubscribe nor the
 * Security page) in `page`, and sees the app.
 * @param {Mail} mail
 * @param {{ url: string }} at
 * @param {import('playwright-core').Page} page signed in as the mail's reader
 */
async function linkOpensTheApp(mail, at, page) {
  const links = mail.text.match(/https?:\/\/\S+/g) ?? [];
  const app = links.find((l) => !l.includes('/unsubscribe') && !l.endsWith('/security'));
  assert.ok(app?.startsWith(`${at.url}/`), `a link into the app: ${links.join(' ')}`);
  await page.goto(app);
  await page.getByRole('heading', { name: 'Your households' }).waitFor();
  await page.goto(`${at.url}/security`);
  await page.getByRole('heading', { name: 'Email me when…' }).waitFor();
}

/**
 * Follows `link` as a mail program does (a POST without any session), and sees on the
 * Security page in `page` that `kind` is now off.
 * @param {string} link
 * @param {string} kind
 * @param {{ url: string }} at
 * @param {import('playwright-core').Page} page signed in as the mail's reader
 */
async function oneClickSwitchesOff(link, kind, at, page) {
  const answer = await fetch(link, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'List-Unsubscribe=One-Click',
  });
  assert.equal(answer.status, 200, await answer.text());
  await page.goto(`${at.url}/security`);
  await page.getByRole('heading', { name: 'Email me when…' }).waitFor();
  assert.equal(await page.locator(`#notify-${kind}`).isChecked(), false, `${kind} is off on the Security page after the mail's one click`);
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
  await page.getByRole('status').filter({ hasText: `We are emailing the invitation to ${AUNT}, unless they turned such emails off` }).waitFor();
  const link = await page.getByLabel('Invitation link').inputValue();
  await screenshot(page, 'notifications-invitation-emailed');
  await expectAccessible(page, 'family page after emailing an invitation');

  const mail = await mailTo(AUNT, 'You are invited to join the household');
  assert.ok(mail.includes(link), `the mail holds the link the page shows:\n${mail}`);
  assert.ok(!mail.includes('Sami'), 'never the child\'s name');
});

test('each kind of mail comes of what people do, names nothing private and switches off in one click', { timeout: 300000 }, async () => {
  await family.ensureHousehold();
  // Grandma joins with the parent's link (the parent is asked to approve her), and the
  // parent approves her on the family page (she is told).
  await family.ensureFamily();
  const waiting = await waitForMail(outbox(), 'noor@example.com', 'waits for your approval');
  assert.ok(waiting.text.includes('Grandma Leila'), `the newcomer's name, so that the parent knows whom:\n${waiting.text}`);
  const approved = await waitForMail(outbox(), GRAN, 'A parent approved you');

  // The parent emails grandma an invitation from the family page (she has an account: the
  // mail follows her switch and carries her link).
  const page = parent.page;
  await page.goto(`${family.url}/family`);
  await page.getByLabel('Their email address (optional)').fill(GRAN);
  await page.getByRole('button', { name: 'Create invitation link' }).click();
  await page.locator('#invite-email-result').filter({ hasText: GRAN }).waitFor();
  const link = await page.getByLabel('Invitation link').inputValue();
  const invitation = await waitForMail(outbox(), GRAN, 'You are invited to join the household');
  assert.ok(invitation.text.includes(link), `the mail holds the link the page shows:\n${invitation.text}`);

  // The toy records a reply: grandma is told there is one.
  toy = startToy(server, join(work, 'toy'));
  await family.ensurePairedToy(toy);
  let from = toy.output().length;
  toy.tell(`record ${REPLY}`);
  await toy.says(/server has recording/, { from, timeoutMs: 30000 });
  const replied = await waitForMail(outbox(), GRAN, 'There is a new message from the toy');

  // Grandma sends a message her recorder broke: the browser seals and sends it, the toy
  // finds no recording inside and refuses it, and she is told.
  const g = gran.page;
  await gran.context.route(/\/js\/mail\.js(\?.*)?$/, async (route) => {
    const original = await route.fetch();
    const source = await original.text();
    const broken = source.replace(/(\n\s*)payload,(\s*\);\s*return upload\()/, `$1new TextEncoder().encode(${JSON.stringify(BROKEN)}),$2`);
    assert.notEqual(broken, source, 'mail.js still seals `payload` right before uploading it');
    await route.fulfill({ response: original, body: broken });
  });
  await g.goto(family.url);
  await g.getByRole('heading', { name: `Messages with ${CHILD}` }).waitFor();
  await g.getByRole('button', { name: 'Record' }).click();
  await g.waitForTimeout(1500);
  await g.getByRole('button', { name: 'Stop' }).click();
  await g.locator('.recorder[data-recorded]').waitFor();
  from = toy.output().length;
  await g.getByRole('button', { name: /^Send to/ }).click();
  await g.getByRole('status').filter({ hasText: 'Sent.' }).waitFor();
  const notPlayed = await waitForMail(outbox(), GRAN, 'could not play a voice message you sent');
  await gran.context.unroute(/\/js\/mail\.js(\?.*)?$/);
  assert.doesNotMatch(toy.output().slice(from), /played message/, 'the toy played nothing');

  /** @type {[Mail, string, import('playwright-core').Page][]} */
  const told = [
    [waiting, 'approval_waiting', page],
    [approved, 'approved', g],
    [invitation, 'invitation', g],
    [replied, 'child_replied', g],
    [notPlayed, 'message_not_played', g],
  ];
  for (const [mail, kind, reader] of told) {
    const unsubscribe = checkNotification(mail, server, CHILD);
    assert.ok(unsubscribe.includes(`.${kind}.`), `${kind}: ${unsubscribe}`);
    if (kind !== 'invitation') await linkOpensTheApp(mail, server, reader);
    await oneClickSwitchesOff(unsubscribe, kind, server, reader);
  }
  await screenshot(g, 'notifications-switched-off-by-mail');
  await expectAccessible(g, 'security page after unsubscribing from mails');
  const off = await apiGet(g, server, '/api/v1/accounts/me/notifications');
  assert.deepEqual(
    off.settings.filter((/** @type {any} */ s) => s.enabled).map((/** @type {any} */ s) => s.kind),
    ['approval_waiting'],
    'grandma switched off the four kinds she got; the parent only her own',
  );
});

/**
 * A free port on 127.0.0.1.
 * @returns {Promise<number>}
 */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Starts aiosmtpd on a free port, keeping what it receives in a Maildir under `dir`;
 * null (with why) when python3 or aiosmtpd is missing.
 * @param {string} dir
 * @returns {Promise<{ url: string, received: string, stop: () => void } | { missing: string }>}
 */
async function startSmtp(dir) {
  for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(dir, sub), { recursive: true });
  const port = await freePort();
  const child = spawn('python3', ['-m', 'aiosmtpd', '-n', '-l', `127.0.0.1:${port}`, '-c', 'aiosmtpd.handlers.Mailbox', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  /** @type {string | null} */
  let failed = null;
  child.on('error', (e) => (failed = `python3 is not runnable (${e.message})`));
  const end = Date.now() + MAIL_WAIT_MS;
  for (;;) {
    const listening = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (listening) break;
    if (failed) return { missing: failed };
    if (child.exitCode !== null) return { missing: `aiosmtpd did not start (install it with \`python3 -m pip install aiosmtpd\`): ${err.trim().split('\n').pop()}` };
    assert.ok(Date.now() < end, `aiosmtpd never listened:\n${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `smtp://127.0.0.1:${port}`,
    received: join(dir, 'new'),
    stop: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

test('through a real SMTP server: the parent is asked to approve, grandpa is told, and one click switches a kind off', { timeout: 240000 }, async (t) => {
  const smtp = await startSmtp(join(work, 'maildir'));
  if ('missing' in smtp) {
    const why = `SMTP (python3 -m aiosmtpd) is missing: ${smtp.missing}`;
    if (process.env.CI || process.env.PAWPOST_REQUIRE_SMTP === '1') assert.fail(why);
    console.warn(`\n*** SKIPPED: ${why} ***\n`);
    t.skip(why);
    return;
  }
  const viaSmtp = await startServer({ args: ['--smtp-url', smtp.url] });
  // Fresh browsers: cookies are per host, not per port, and this is another server.
  const wav = makeVoiceWav(work, 'Hello.');
  const mum = await openBrowser(wav);
  const grandpa = await openBrowser(wav);
  try {
    const smtpFamily = new StoryFamily(viaSmtp, {
      parent: { browser: mum, email: 'amal@example.com', name: 'Amal' },
      relative: { browser: grandpa, email: 'yusuf@example.com', name: 'Grandpa Yusuf' },
      household: 'The Mansours',
      child: 'Rami',
    });
    await smtpFamily.ensureFamily();
    const waiting = await waitForMail(smtp.received, 'amal@example.com', 'waits for your approval', viaSmtp);
    const approved = await waitForMail(smtp.received, 'yusuf@example.com', 'A parent approved you', viaSmtp);
    assert.equal(mailsIn(join(viaSmtp.dataDir, 'data', 'outbox')).length, 0, 'with --smtp-url nothing goes to the outbox');
    for (const [mail, kind, reader] of /** @type {[Mail, string, import('playwright-core').Page][]} */ ([
      [waiting, 'approval_waiting', mum.page],
      [approved, 'approved', grandpa.page],
    ])) {
      const unsubscribe = checkNotification(mail, viaSmtp, 'Rami');
      await linkOpensTheApp(mail, viaSmtp, reader);
      await oneClickSwitchesOff(unsubscribe, kind, viaSmtp, reader);
    }
    await screenshot(mum.page, 'notifications-smtp-switched-off');
  } finally {
    await mum.close();
    await grandpa.close();
    await viaSmtp.stop();
    smtp.stop();
  }
});
