// Passkeys in a real Chromium against a real server, with the DevTools Protocol's
// virtual authenticator (a platform authenticator with resident keys, user verification
// and the PRF extension): signing up with a passkey, signing out and in with it, adding
// one to a password account on the Security page, the PRF output never posted,
// recovery material kept with a passkey opened again after a reload, a fresh browser that
// got the same passkey (as a synced passkey arrives on a new phone), and what the page
// says when there is no passkey or no passkey support.
//
// Browsers refuse an IP address as a passkey's site, so the pages are opened at
// http://localhost:PORT; the server, reached at 127.0.0.1, takes that as its origin.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { CHROMIUM, requireBinary, screenshot, signUp, startServer } from './harness.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
let site = '';
/** Every request body the pages posted, with its URL. */
/** @type {{ url: string, body: string }[]} */
const posted = [];
/** @type {string[]} */
const pageErrors = [];

const SIGN_UP_EMAIL = 'nana@example.com';
const PASSWORD_EMAIL = 'grandpa@example.com';

before(async () => {
  requireBinary();
  server = await startServer();
  site = server.url.replace('127.0.0.1', 'localhost');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30000,
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * A fresh browser context with its own virtual authenticator; every body it posts is
 * kept in `posted`.
 * @returns {Promise<{ context: import('playwright-core').BrowserContext, page: import('playwright-core').Page, cdp: import('playwright-core').CDPSession, authenticatorId: string }>}
 */
async function freshBrowser() {
  const context = await browser.newContext({ viewport: { width: 420, height: 860 } });
  context.setDefaultTimeout(15000);
  // Only this server: anything else is a bug (CSP would block it too).
  await context.route((url) => url.origin !== site, (route) => {
    pageErrors.push(`request outside ${site}: ${route.request().url()}`);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('request', (request) => {
    const body = request.postData();
    if (body !== null) posted.push({ url: request.url(), body });
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      hasPrf: true,
      automaticPresenceSimulation: true,
    },
  });
  return { context, page, cdp, authenticatorId };
}

/**
 * Waits until the page shows the signed-in header for `name`.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
async function signedInAs(page, name) {
  try {
    await page.locator('header .who').filter({ hasText: name }).waitFor({ timeout: 20000 });
  } catch (e) {
    const shown = await page.locator('.error').allTextContents().catch(() => []);
    throw new Error(`not signed in as ${name}: ${e instanceof Error ? e.message : e}\npage error: ${shown.join(' | ') || '(none)'}\nserver log (end):\n${server.log().slice(-3000)}`, { cause: e });
  }
}

/**
 * Calls the passkeys module the page itself uses.
 * @param {import('playwright-core').Page} page
 * @param {'hasPrfKey' | 'save' | 'load'} what
 * @param {number[]} [bytes]
 * @returns {Promise<any>}
 */
function passkeysModule(page, what, bytes = []) {
  return page.evaluate(
    async ([what, bytes]) => {
      const m = await import('/js/passkeys.js');
      if (what === 'hasPrfKey') return m.hasPrfKey();
      if (what === 'save') return m.saveRecoveryMaterial(new Uint8Array(/** @type {number[]} */ (bytes)));
      const loaded = await m.loadRecoveryMaterial();
      return loaded ? Array.from(loaded) : null;
    },
    /** @type {[string, number[]]} */ ([what, bytes]),
  );
}

/** @type {{ cdp: import('playwright-core').CDPSession, authenticatorId: string } | null} */
let first = null;
const MATERIAL = Array.from({ length: 200 }, (_, i) => (i * 37 + 11) % 256);
/** The PRF output of the sign-up story's passkey, in the forms a body could carry it. */
/** @type {string[]} */
const prfForms = [];

test('sign up with a passkey, sign out, and sign in with it', { timeout: 120000 }, async () => {
  const b = await freshBrowser();
  first = b;
  const { page } = b;
  await page.goto(`${site}/signup`);
  await page.getByText("Use a passkey: your phone or computer's fingerprint, face or screen lock").first().waitFor();
  // Without the email address and name, it says what to type.
  await page.getByRole('button', { name: 'Sign up with a passkey' }).click();
  await page.locator('#passkey-signup-error').filter({ hasText: 'type your email address and your name' }).waitFor();
  await page.getByLabel('Email').fill(SIGN_UP_EMAIL);
  await page.getByLabel('Your name (as your family knows you)').fill('Nana');
  await page.getByRole('button', { name: 'Sign up with a passkey' }).click();
  await signedInAs(page, 'Nana');
  assert.equal(await passkeysModule(page, 'hasPrfKey'), true, 'the new passkey gave this page its key');
  await passkeysModule(page, 'save', MATERIAL);
  assert.deepEqual(await passkeysModule(page, 'load'), MATERIAL);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor();
  assert.equal(await passkeysModule(page, 'hasPrfKey'), true, 'module state until the page reloads');
  await page.reload();
  assert.equal(await passkeysModule(page, 'hasPrfKey'), false, 'never stored: gone with the page');
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await signedInAs(page, 'Nana');
  assert.equal(await passkeysModule(page, 'hasPrfKey'), true);
  assert.deepEqual(await passkeysModule(page, 'load'), MATERIAL);
  // The passkey's PRF output, asked for here without sending it anywhere, so that the
  // last story can look for it in everything the pages posted.
  prfForms.push(
    ...(await page.evaluate(async () => {
      const salt = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode('pawpost/v1/passkey-prf')));
      const c = /** @type {PublicKeyCredential} */ (
        await navigator.credentials.get({
          publicKey: { challenge: crypto.getRandomValues(new Uint8Array(32)), rpId: location.hostname, userVerification: 'required', extensions: { prf: { eval: { first: salt } } } },
        })
      );
      const out = new Uint8Array(/** @type {any} */ (c.getClientExtensionResults()).prf.results.first);
      const b64 = btoa(String.fromCharCode(...out));
      const hex = Array.from(out, (x) => x.toString(16).padStart(2, '0')).join('');
      return [b64.replace(/=+$/, ''), b64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''), hex, Array.from(out).join(',')];
    })),
  );

  // A password does not open this account.
  const status = await page.evaluate(async (email) => {
    const r = await fetch('/api/v1/sessions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email, password: 'any password at all here' }) });
    return r.status;
  }, SIGN_UP_EMAIL);
  assert.equal(status, 401);

  // Its only passkey cannot be removed: the Security page says why, beside the list.
  await page.getByRole('link', { name: 'Security' }).click();
  await page.getByRole('heading', { name: 'Passkeys' }).waitFor();
  // No password to change: how to set one instead.
  await page.getByText('You sign in with a passkey, so this account has no password.').waitFor();
  assert.equal(await page.getByRole('heading', { name: 'Change your password' }).count(), 0);
  await page.getByRole('button', { name: /^Remove passkey/ }).click();
  await page.locator('#passkeys-error').filter({ hasText: 'only way left to sign in' }).waitFor();
  await screenshot(page, 'passkeys-security');
});

test('a synced passkey signs in a fresh browser, which opens the recovery material only with the passkey\'s PRF', { timeout: 120000 }, async (t) => {
  assert.ok(first, 'the sign-up story ran first');
  const { credentials } = await first.cdp.send('WebAuthn.getCredentials', { authenticatorId: first.authenticatorId });
  assert.equal(credentials.length, 1, 'one passkey, kept by the authenticator');
  const b = await freshBrowser();
  for (const credential of credentials) {
    await b.cdp.send('WebAuthn.addCredential', { authenticatorId: b.authenticatorId, credential });
  }
  const { page } = b;
  await page.goto(`${site}/signin`);
  assert.equal(await passkeysModule(page, 'hasPrfKey'), false);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await signedInAs(page, 'Nana');
  if (await passkeysModule(page, 'hasPrfKey')) {
    assert.deepEqual(await passkeysModule(page, 'load'), MATERIAL);
  } else {
    // Chromium's virtual authenticator keeps a credential's PRF secret (its hmac-secret
    // key) outside what WebAuthn.getCredentials exports, so a copied passkey signs in
    // but gives no PRF output. Without it the page has no key, and says so plainly;
    // the round trip with the PRF is the reload in the story above.
    t.diagnostic('this Chromium does not copy the PRF secret with WebAuthn.addCredential');
    await assert.rejects(passkeysModule(page, 'load'), /sign in with your passkey first/);
  }
  await b.context.close();
});

test('a password account adds a passkey on the Security page and signs in with it', { timeout: 120000 }, async () => {
  const b = await freshBrowser();
  const { page } = b;
  await page.goto(`${site}/signup`);
  await signUp(page, { email: PASSWORD_EMAIL, name: 'Grandpa' });
  await signedInAs(page, 'Grandpa');
  await page.getByRole('link', { name: 'Security' }).click();
  await page.getByRole('heading', { name: 'Passkeys' }).waitFor();
  await page.getByText('No passkey yet.').waitFor();
  await page.getByLabel('Name for a new passkey (optional)').fill('My phone');
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.getByRole('status').filter({ hasText: 'Passkey "My phone" added' }).waitFor();
  await page.locator('ul.passkeys li strong').filter({ hasText: 'My phone' }).waitFor();
  assert.equal(await passkeysModule(page, 'hasPrfKey'), true);

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await signedInAs(page, 'Grandpa');
  // A password account may remove its last passkey.
  await page.getByRole('link', { name: 'Security' }).click();
  await page.getByRole('button', { name: 'Remove passkey My phone' }).click();
  await page.getByRole('status').filter({ hasText: 'Passkey "My phone" removed' }).waitFor();
  await page.getByText('No passkey yet.').waitFor();
  await b.context.close();
});

test('with no passkey for this site, the sign-in page says what happened beside the button', { timeout: 60000 }, async () => {
  const b = await freshBrowser();
  const { page } = b;
  await page.goto(`${site}/signin`);
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.locator('#passkey-signin-error').filter({ hasText: 'cancelled or took too long' }).waitFor({ timeout: 30000 });
  assert.equal(await page.locator('header .who').count(), 0, 'still signed out');
  await b.context.close();
});

test('a browser without passkeys is told to use the password', { timeout: 60000 }, async () => {
  const b = await freshBrowser();
  await b.page.addInitScript(() => {
    Object.defineProperty(window, 'PublicKeyCredential', { value: undefined, configurable: true });
  });
  await b.page.goto(`${site}/signin`);
  await b.page.getByText('This browser cannot use passkeys. Use your email address and password').waitFor();
  assert.equal(await b.page.getByRole('button', { name: 'Sign in with a passkey' }).count(), 0);
  await b.context.close();
});

test('no request body the pages posted holds PRF results', () => {
  const ceremonies = posted.filter((p) => /\/api\/v1\/(accounts\/passkey|sessions\/passkey|passkeys\/registrations)\/[0-9a-f-]{36}$/.test(p.url));
  assert.ok(ceremonies.length >= 5, `the ceremonies' answers were seen: ${ceremonies.length}`);
  assert.equal(prfForms.length, 4, 'the PRF output was read in the first story');
  for (const { url, body } of posted) {
    assert.doesNotMatch(body, /prf/i, `${url} posted ${body.slice(0, 200)}`);
    for (const form of prfForms) assert.ok(!body.includes(form), `${url} posted the PRF output`);
    if (ceremonies.some((c) => c.body === body)) {
      const { credential } = JSON.parse(body);
      assert.ok(credential?.response?.clientDataJSON, `${url}: a credential`);
      assert.equal(credential.extensions?.prf, undefined);
    }
  }
  assert.deepEqual(pageErrors, []);
});
