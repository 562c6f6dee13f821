// Real-browser test support: a pawpost server on 127.0.0.1, Chromium with a fake
// microphone, and helpers shared by the stories.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const BINARY = join(REPO, 'target/debug/pawpost');
export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = join(REPO, 'test-artifacts');
export const AXE = join(REPO, 'node_modules/axe-core/axe.min.js');

/** A strong password for the stories. */
export const STRONG = 'velvet otter juggles seven plums';

export function requireBinary() {
  assert.ok(existsSync(BINARY), `${BINARY} is missing: run \`cargo build -p pawpost\` first (scripts/test runs cargo test, which builds it)`);
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install the Debian package chromium (.ci/run does)`);
}

/**
 * Starts `pawpost serve` on a free port of 127.0.0.1 with a fresh data folder.
 * @param {{ timeoutMs?: number, args?: string[] }} [options] `args` are added to `pawpost serve`'s (e.g. `--smtp-url`)
 * @returns {Promise<{ url: string, dataDir: string, stop: () => Promise<void>, log: () => string }>}
 */
export async function startServer(options = {}) {
  requireBinary();
  const dataDir = mkdtempSync(join(tmpdir(), 'pawpost-web-'));
  const child = spawn(
    BINARY,
    ['serve', '--listen', '127.0.0.1:0', '--data-dir', join(dataDir, 'data'), '--insecure-cookies', '--hash-workers', '2', ...(options.args ?? [])],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', PAWPOST_LOG: 'warn' } },
  );
  let out = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), options.timeoutMs ?? 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /pawpost is serving (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
  return {
    url,
    dataDir,
    log: () => out,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A spoken WAV for the fake microphone: espeak-ng if installed, else a sine tone.
 * @param {string} dir
 * @param {string} text
 * @returns {string} the file
 */
export function makeVoiceWav(dir, text) {
  const file = join(dir, 'voice.wav');
  const espeak = spawnSync('espeak-ng', ['-w', file, text], { timeout: 10000 });
  if (espeak.status === 0 && existsSync(file)) return file;
  // 3 s of a 440 Hz tone, 16-bit mono 48 kHz.
  const rate = 48000;
  const n = rate * 3;
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + n * 2, 4);
  buf.write('WAVEfmt ', 8);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36);
  buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) buf.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 440 * i) / rate) * 12000), 44 + i * 2);
  writeFileSync(file, buf);
  return file;
}

/**
 * One person's browser: Chromium with its own fresh profile and a fake microphone;
 * `device` overrides the window (a phone: `{ viewport, isMobile: true, hasTouch: true }`).
 * @param {string} wav
 * @param {{ viewport?: { width: number, height: number }, isMobile?: boolean, hasTouch?: boolean, deviceScaleFactor?: number, userAgent?: string, locale?: string, serviceWorkers?: 'allow' | 'block' }} [device]
 *   `locale` is the browser's language (`navigator.languages`, Accept-Language), e.g. 'de-DE'
 * @returns {Promise<{ context: import('playwright-core').BrowserContext, page: import('playwright-core').Page, close: () => Promise<void>, errors: string[] }>}
 */
export async function openBrowser(wav, device = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'pawpost-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`,
      '--autoplay-policy=no-user-gesture-required',
    ],
    viewport: { width: 420, height: 860 },
    timeout: 30000,
    ...device,
  });
  context.setDefaultTimeout(15000);
  /** @type {string[]} */
  const errors = [];
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    // Expected 4xx answers (signed out, pending, blocked) are shown in the page, not errors.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  // Only 127.0.0.1: anything else is a bug (CSP would block it too).
  await context.route(/^(?!http:\/\/127\.0\.0\.1[:/]).*/, (route) => {
    errors.push(`request outside 127.0.0.1: ${route.request().url()}`);
    return route.abort();
  });
  return {
    context,
    page,
    errors,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/**
 * Runs the axe-core accessibility checker on the page as it is shown and fails with every
 * violation: its rule, impact, the elements (CSS selectors) and what axe says to fix.
 * The app's Content-Security-Policy allows only its own scripts, so axe is not added as a
 * <script> element: it is evaluated through the DevTools protocol, which the policy does
 * not govern.
 * @param {import('playwright-core').Page} page
 * @param {string} label names the screen in the failure
 */
export async function expectAccessible(page, label) {
  assert.ok(existsSync(AXE), `${AXE} is missing: run \`npm ci\` (axe-core is a devDependency)`);
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(readFileSync(AXE, 'utf8'));
  const violations = await page.evaluate(async () => {
    const axe = /** @type {any} */ (window).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((/** @type {any} */ v) => ({
      id: String(v.id),
      impact: String(v.impact),
      help: String(v.help),
      nodes: v.nodes.map((/** @type {any} */ n) => ({ target: n.target.map(String).join(' '), summary: String(n.failureSummary ?? '') })),
    }));
  });
  const listed = violations
    .map((v) => `- ${v.id} (${v.impact}): ${v.help}\n${v.nodes.map((n) => `    ${n.target}\n      ${n.summary.replace(/\n/g, '\n      ')}`).join('\n')}`)
    .join('\n');
  assert.equal(violations.length, 0, `${label}: axe found ${violations.length} accessibility violation(s):\n${listed}`);
}

/**
 * Signs up through the form and lands signed in.
 * @param {import('playwright-core').Page} page
 * @param {{ email: string, name: string, password?: string }} who
 */
export async function signUp(page, who) {
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Your name (as your family knows you)').fill(who.name);
  await page.getByLabel('Password', { exact: true }).fill(who.password ?? STRONG);
  await page.getByRole('button', { name: 'Create account' }).click();
}

/**
 * Waits for the page's status line to say `text`; if it does not, fails with what the page
 * showed as an error and the end of the server's log, so that a failure says why.
 * @param {import('playwright-core').Page} page
 * @param {string} text
 * @param {{ log: () => string }} server
 */
export async function statusSays(page, text, server) {
  try {
    await page.getByRole('status').filter({ hasText: text }).waitFor({ timeout: 30000 });
  } catch (e) {
    const shown = await page.locator('.error').allTextContents().catch(() => []);
    throw new Error(`${e instanceof Error ? e.message : e}\npage error: ${shown.join(' | ') || '(none)'}\nserver log (end):\n${server.log().slice(-4000)}`, { cause: e });
  }
}

/**
 * Reads the server's answer to a GET as the person signed in on `page` (null if refused).
 * @param {import('playwright-core').Page} page
 * @param {{ url: string }} server
 * @param {string} path
 * @returns {Promise<any>}
 */
export async function apiGet(page, server, path) {
  if (!page.url().startsWith(server.url)) await page.goto(server.url);
  return page.evaluate(async (p) => {
    const r = await fetch(p);
    return r.ok ? r.json() : null;
  }, path);
}

/**
 * Starts the simulated toy against `server`, its state kept in `stateDir`.
 * @param {{ url: string }} server
 * @param {string} stateDir
 * @param {string[]} [args] more of `pawpost toy`'s options (e.g. `--serial-listen`)
 */
export function startToy(server, stateDir, args = []) {
  const child = spawn(BINARY, ['toy', '--server', server.url, '--state-dir', stateDir, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const toy = {
    /** Everything the toy printed so far. */
    output: () => out,
    /** @param {string} line a command typed to the toy */
    tell: (line) => child.stdin.write(`${line}\n`),
    /**
     * Waits for the toy to print a line matching `re` after output position `from`.
     * @param {RegExp} re
     * @param {{ from?: number, timeoutMs?: number }} [options]
     * @returns {Promise<RegExpExecArray>}
     */
    async says(re, options = {}) {
      const end = Date.now() + (options.timeoutMs ?? 20000);
      for (;;) {
        const m = re.exec(out.slice(options.from ?? 0));
        if (m) return m;
        if (Date.now() > end) throw new Error(`the toy never printed ${re}; it printed:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    /** Asks the toy for its status and returns the lines it printed. */
    async status() {
      const from = out.length;
      toy.tell('status');
      await toy.says(/connection: .*\n/, { from });
      return out.slice(from);
    },
    /**
     * Waits for the toy to hold roster `version` (pushed while it is connected).
     * @param {number} version
     */
    async hasRoster(version) {
      const end = Date.now() + 20000;
      for (;;) {
        const held = Number((await toy.status()).match(/roster version: (\d+)/)?.[1]);
        if (held >= version) return;
        assert.ok(Date.now() < end, `the toy stayed at roster version ${held}; the server's is ${version}`);
        await new Promise((r) => setTimeout(r, 300));
      }
    },
    stop() {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
  return toy;
}

/**
 * @typedef {{ browser: Awaited<ReturnType<typeof openBrowser>>, email: string, name: string, password?: string }} Person
 */

/**
 * A story's household: a parent, a relative they invited and approved, and the toy. Its
 * ensure… steps look at what the server and the toy already have and do only what is
 * missing, so each story sets up what it needs whatever the stories before it left.
 */
export class StoryFamily {
  /**
   * @param {{ url: string, log: () => string }} server
   * @param {{ parent: Person, relative: Person, household: string, child: string }} who
   */
  constructor(server, who) {
    this.server = server;
    this.parent = who.parent;
    this.relative = who.relative;
    this.household = who.household;
    this.child = who.child;
    this.householdId = '';
  }

  get url() {
    return `${this.server.url}/households/${this.householdId}`;
  }

  /**
   * `person` signed in: through the sign-up form, or, when their address already has an
   * account, the sign-in form (so that no failed sign-in is recorded).
   * @param {Person} person
   */
  async ensureSignedIn(person) {
    const page = person.browser.page;
    if (await apiGet(page, this.server, '/api/v1/sessions/current')) return;
    const households = page.getByRole('heading', { name: 'Your households' });
    await page.goto(`${this.server.url}/signup`);
    await signUp(page, person);
    const refused = page.getByRole('alert').filter({ hasText: 'sign in instead' });
    await households.or(refused).first().waitFor();
    if (await households.isVisible()) return;
    await page.goto(`${this.server.url}/signin`);
    await page.getByLabel('Email').fill(person.email);
    await page.getByLabel('Password', { exact: true }).fill(person.password ?? STRONG);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await households.waitFor();
  }

  /** The parent's account and household. */
  async ensureHousehold() {
    if (this.householdId) return;
    const page = this.parent.browser.page;
    await this.ensureSignedIn(this.parent);
    const made = (await apiGet(page, this.server, '/api/v1/households'))?.find((/** @type {any} */ x) => x.name === this.household);
    if (made) {
      this.householdId = made.id;
      return;
    }
    if (new URL(page.url()).pathname !== '/') await page.goto(this.server.url);
    await page.getByLabel('Household name').fill(this.household);
    await page.getByLabel("Your child's name").fill(this.child);
    await page.getByRole('button', { name: 'Create household' }).click();
    await page.getByRole('heading', { name: `Messages with ${this.child}` }).waitFor();
    this.householdId = /** @type {string} */ (new URL(page.url()).pathname.split('/').pop());
  }

  /**
   * The household with the relative in it, approved.
   * @returns {Promise<boolean>} whether the parent approved them just now, the family page still open
   */
  async ensureFamily() {
    await this.ensureHousehold();
    const page = this.parent.browser.page;
    const relative = this.relative;
    const member = async () =>
      (await apiGet(page, this.server, `/api/v1/households/${this.householdId}/members`))?.find((/** @type {any} */ m) => m.display_name === relative.name);
    let m = await member();
    if (m?.status === 'approved') return false;
    if (!m) {
      await page.goto(`${this.url}/family`);
      await page.getByRole('button', { name: 'Create invitation link' }).click();
      const invite = await page.getByLabel('Invitation link').inputValue();
      // Signed in already, they join by opening the link; else they sign up through it.
      const signedIn = Boolean(await apiGet(relative.browser.page, this.server, '/api/v1/sessions/current'));
      await relative.browser.page.goto(invite);
      if (!signedIn) await signUp(relative.browser.page, relative);
      await relative.browser.page.getByText('has to approve you').waitFor();
      m = await member();
    }
    assert.equal(m?.status, 'pending', `${relative.name} should wait for a parent's approval: ${JSON.stringify(m)}`);
    await page.goto(`${this.url}/family`);
    await page.locator('li.member', { hasText: relative.name }).getByRole('button', { name: /^Approve/ }).click();
    await page.getByRole('status').filter({ hasText: 'is approved' }).waitFor();
    return true;
  }

  /**
   * The family, and the toy paired with its household by the code it speaks, confirmed by
   * a press of its paw.
   * @param {ReturnType<typeof startToy>} toy
   */
  async ensurePairedToy(toy) {
    const familyPageOpen = await this.ensureFamily();
    if ((await toy.status()).includes(`household: ${this.householdId}\n`)) return;
    const page = this.parent.browser.page;
    // Right after approving, the code is typed into the family page as that change left it:
    // the page must not lose it to its own redraw.
    if (!familyPageOpen) await page.goto(`${this.url}/family`);
    const from = toy.output().length;
    toy.tell('long-press');
    const [, spoken] = await toy.says(/toy says: (\d \d \d \d \d \d)/, { from });
    await page.getByLabel('Code the toy speaks').fill(spoken);
    await page.getByRole('button', { name: 'Add toy' }).click();
    const [, number] = await toy.says(/confirm pairing: (\d{3})/, { from });
    await page.getByRole('status').filter({ hasText: `say the number ${number.split('').join(' ')}.` }).waitFor();
    toy.tell('press');
    await statusSays(page, 'The toy is paired.', this.server);
    await toy.says(/paired with household/, { from });
  }
}
