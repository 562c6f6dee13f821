// The app in the family's language, in a real Chromium against a real server. A German
// browser (locale de-DE) walks through signing up, starting a household, the household page
// with its recorder, inviting a grandmother (whose browser is German too) and approving her,
// the family page and the Security page: every screen says <html lang="de">, shows no
// sentence of the English catalogue nor English small words such as "the" or "your"
// (visible text, aria-labels, placeholders, titles, alt),
// and passes axe-core in light and dark. A toy started with PAWPOST_TOY_LANGUAGE=de is
// paired from that German page and speaks German (its pairing words, the number to confirm,
// its safety number), and its card and the "they match" step are German too. A Spanish
// browser gets Spanish, a French one English
// (pawpost does not speak French), and the switch at the foot of the page changes the
// language and keeps the choice.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import en from '../../js/locales/en.js';
import de from '../../js/locales/de.js';
import es from '../../js/locales/es.js';
import { expectAccessible, makeVoiceWav, openBrowser, screenshot, startServer, startToy, statusSays, STRONG } from './harness.js';

const HOUSEHOLD = 'Familie Weber';
const CHILD = 'Mia';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let parent;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let oma;
/** @type {ReturnType<typeof startToy> | undefined} */
let toy;
let work = '';
let householdPath = '';

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-i18n-story-'));
  const wav = makeVoiceWav(work, 'Hallo.');
  parent = await openBrowser(wav, { locale: 'de-DE' });
  oma = await openBrowser(wav, { locale: 'de-DE' });
});

after(async () => {
  toy?.stop();
  await parent?.close();
  await oma?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * The English sentences a German page must not show: each part of a catalogue sentence
 * between its placeholders that is at least two words long. Parts the German catalogue
 * also says word for word (a shared term) are not English tells.
 * @param {Record<string, any>} own the page language's catalogue
 */
function englishTells(own) {
  const theirs = Object.values(own)
    .flatMap((v) => (typeof v === 'string' ? [v] : Object.values(v)))
    .join('\n');
  const tells = new Set();
  for (const value of Object.values(en)) {
    for (const text of typeof value === 'string' ? [value] : Object.values(value)) {
      for (const part of text.split(/\{\w+\}/)) {
        const trimmed = part.trim().replace(/^[\s,.;:·–—(←]+|[\s,.;:·–—)…]+$/g, '');
        if ((trimmed.match(/[A-Za-z]{2,}/g) ?? []).length < 2) continue;
        if (theirs.includes(trimmed)) continue;
        tells.add(trimmed);
      }
    }
  }
  return [...tells];
}

const GERMAN_TELLS = englishTells(de);
const SPANISH_TELLS = englishTells(es);

/**
 * Everything the page says to a person: its visible text, the title, and the words only
 * assistive technology or a hover shows (aria-label, placeholder, title, alt).
 * @param {import('playwright-core').Page} page
 */
async function pageWords(page) {
  return page.evaluate(() => {
    const words = [document.title, document.body.innerText];
    for (const el of document.querySelectorAll('[aria-label], [placeholder], [title], [alt]')) {
      for (const attr of ['aria-label', 'placeholder', 'title', 'alt']) {
        const v = el.getAttribute(attr);
        if (v) words.push(v);
      }
    }
    return words.join('\n');
  });
}

/**
 * Fails if the page is not in `lang` or shows any English sentence of the catalogue; then
 * runs axe-core on it in light and in dark, and keeps a screenshot of each.
 * @param {import('playwright-core').Page} page
 * @param {string} label
 * @param {{ lang?: string, tells?: string[] }} [options]
 */
async function expectTranslated(page, label, options = {}) {
  const lang = options.lang ?? 'de';
  const tells = options.tells ?? GERMAN_TELLS;
  assert.equal(await page.evaluate(() => document.documentElement.lang), lang, `${label}: <html lang>`);
  const words = await pageWords(page);
  const english = tells.filter((s) => words.includes(s));
  assert.deepEqual(english, [], `${label}: English left on the ${lang} page:\n${words}`);
  // English that never went through the catalogue shows itself by its small words.
  const small = [...new Set(words.match(/\b(the|your|you|with|this|and|of|to)\b/gi) ?? [])];
  assert.deepEqual(small, [], `${label}: English words on the ${lang} page:\n${words}`);
  for (const scheme of /** @type {const} */ (['light', 'dark'])) {
    await page.emulateMedia({ colorScheme: scheme });
    await expectAccessible(page, `${label} (${lang}, ${scheme})`);
    await screenshot(page, `i18n-${lang}-${label.replace(/\W+/g, '-')}-${scheme}`);
  }
  await page.emulateMedia({ colorScheme: null });
}

test('a German parent signs up, starts a household, records, invites Oma and approves her: all in German', { timeout: 240000 }, async () => {
  const page = parent.page;
  await page.goto(`${server.url}/signup`);
  await page.getByRole('heading', { name: 'Lege dein pawpost-Konto an' }).waitFor();
  await expectTranslated(page, 'sign-up');

  // The password rules speak German while typing, and a refusal is in German beside the field.
  await page.getByLabel('E-Mail').fill('eltern@example.com');
  await page.getByLabel('Dein Name (wie deine Familie dich nennt)').fill('Lena');
  await page.getByLabel('Passwort', { exact: true }).fill('kurz');
  await page.getByText(/Passwortregeln? (ist|sind) noch nicht erfüllt/).waitFor();
  await expectTranslated(page, 'sign-up-rules');
  await page.getByLabel('Passwort', { exact: true }).fill(STRONG);
  await page.getByRole('button', { name: 'Konto anlegen' }).click();

  await page.getByRole('heading', { name: 'Deine Haushalte' }).waitFor();
  await expectTranslated(page, 'households');
  await page.getByLabel('Name des Haushalts').fill(HOUSEHOLD);
  await page.getByLabel('Name deines Kindes').fill(CHILD);
  await page.getByRole('button', { name: 'Haushalt gründen' }).click();
  await page.getByRole('heading', { name: `Nachrichten mit ${CHILD}` }).waitFor();
  householdPath = new URL(page.url()).pathname;
  await page.getByRole('button', { name: 'Aufnehmen' }).waitFor();
  await expectTranslated(page, 'household-recorder');

  // A recording: the recorder's states and its preview in German.
  await page.getByRole('button', { name: 'Aufnehmen' }).click();
  await page.getByRole('button', { name: 'Stopp' }).waitFor();
  await page.waitForTimeout(1500);
  await page.getByRole('button', { name: 'Stopp' }).click();
  await page.getByText(/^Aufgenommen: \d+:\d\d\./).waitFor();
  await expectTranslated(page, 'household-recorded');

  // The family page: invitation, toy, child, settings.
  await page.getByRole('link', { name: 'Familie, Spielzeug und Einstellungen' }).click();
  await page.getByRole('heading', { name: 'Familie und Einstellungen' }).waitFor();
  await expectTranslated(page, 'family');
  await page.getByRole('button', { name: 'Einladungslink erstellen' }).click();
  const inviteUrl = await page.getByLabel('Einladungslink').inputValue();
  assert.match(inviteUrl, /\/join#.+/);
  // The link's expiry in German words and a German date.
  await page.getByText(/läuft in 7 Tagen ab \(\d{1,2}\. \S+ \d{4} \d{2}:\d{2}\)/).waitFor();
  await expectTranslated(page, 'family-invitation');

  // Oma joins through the link in her German browser and waits for approval.
  const o = oma.page;
  await o.goto(inviteUrl);
  await o.getByText('Du wurdest zu einer Familie bei pawpost eingeladen').waitFor();
  await expectTranslated(o, 'join');
  await o.getByLabel('E-Mail').fill('oma@example.com');
  await o.getByLabel('Dein Name (wie deine Familie dich nennt)').fill('Oma Hilde');
  await o.getByLabel('Passwort', { exact: true }).fill(STRONG);
  await o.getByRole('button', { name: 'Konto anlegen' }).click();
  await o.getByText('Ein Elternteil dieses Haushalts muss dich freigeben').waitFor();
  await expectTranslated(o, 'waiting-for-approval');

  await page.reload();
  await page.getByRole('heading', { name: 'Familie und Einstellungen' }).waitFor();
  const row = page.locator('li.member', { hasText: 'Oma Hilde' });
  await row.getByRole('button', { name: /^Freigeben/ }).click();
  await statusSays(page, 'Oma Hilde ist freigegeben.', server);
  await expectTranslated(page, 'family-approved');

  // Oma's household page once approved, with her recorder.
  await o.goto(`${server.url}${householdPath}`);
  await o.getByRole('button', { name: 'Aufnehmen' }).waitFor();
  await expectTranslated(o, 'household-oma');
});

test("the parent's Security page, activity and the sign-in and password pages are German too", { timeout: 120000 }, async () => {
  const page = parent.page;
  await page.goto(`${server.url}/security`);
  await page.getByRole('heading', { name: 'Sicherheit' }).waitFor();
  await page.getByRole('heading', { name: 'Letzte Aktivitäten' }).waitFor();
  await expectTranslated(page, 'security');

  await page.getByRole('button', { name: 'Abmelden' }).click();
  await page.getByRole('heading', { name: 'Bei pawpost anmelden' }).waitFor();
  await expectTranslated(page, 'sign-in');
  // A wrong password is answered in German beside the field, never with the server's English.
  await page.getByLabel('E-Mail').fill('eltern@example.com');
  await page.getByLabel('Passwort', { exact: true }).fill('falsches passwort hier');
  await page.getByRole('button', { name: 'Anmelden', exact: true }).click();
  await page.getByText('Diese E-Mail-Adresse und dieses Passwort passen zu keinem Konto').waitFor();
  await expectTranslated(page, 'sign-in-refused');

  await page.getByRole('link', { name: 'Passwort vergessen?' }).click();
  await page.getByRole('heading', { name: 'Passwort vergessen?' }).waitFor();
  await expectTranslated(page, 'forgot');

  await page.goto(`${server.url}/nirgendwo`);
  await page.getByRole('heading', { name: 'Bei pawpost anmelden' }).waitFor();
  await page.getByLabel('E-Mail').fill('eltern@example.com');
  await page.getByLabel('Passwort', { exact: true }).fill(STRONG);
  await page.getByRole('button', { name: 'Anmelden', exact: true }).click();
  await page.getByRole('heading', { name: 'Seite nicht gefunden' }).waitFor();
  await expectTranslated(page, 'not-found');
});

test('a German toy is paired from the German family page: it speaks German, and its card and safety number check are German', { timeout: 180000 }, async () => {
  // `pawpost toy` takes its language from PAWPOST_TOY_LANGUAGE as from --language.
  process.env.PAWPOST_TOY_LANGUAGE = 'de';
  try {
    toy = startToy(server, join(work, 'toy'));
  } finally {
    delete process.env.PAWPOST_TOY_LANGUAGE;
  }
  const page = parent.page;
  await page.goto(`${server.url}${householdPath}/family`);
  await page.getByRole('heading', { name: 'Familie und Einstellungen' }).waitFor();
  const from = toy.output().length;
  toy.tell('long-press');
  await toy.says(/toy says: lass uns deine Familie finden/, { from });
  const [, spoken] = await toy.says(/toy says: (\d \d \d \d \d \d)/, { from });
  await page.getByLabel('Code, den das Spielzeug sagt').fill(spoken);
  await page.getByRole('button', { name: 'Spielzeug hinzufügen' }).click();
  const [, number] = await toy.says(/confirm pairing: (\d{3})/, { from });
  const digits = number.split('').join(' ');
  await toy.says(new RegExp(`toy says: wenn deine App ${digits} zeigt, drück meine Pfote`), { from });
  await page.getByRole('status').filter({ hasText: `Das Spielzeug sagt jetzt die Zahl ${digits}.` }).waitFor();
  toy.tell('press');
  await statusSays(page, 'Das Spielzeug ist gekoppelt.', server);
  await toy.says(/toy says: hurra, ich habe meine Familie gefunden/, { from });
  const [, safety] = await toy.says(/toy says: meine Sicherheitsnummer ist (\d \d \d \d \d \d)/, { from });

  const card = page.locator('li.toy');
  await card.waitFor();
  const shown = (await card.locator('.safety-digits').textContent()) ?? '';
  assert.equal(shown.replace(/ /g, ''), safety.replace(/ /g, ''));
  await expectTranslated(page, 'family-toy');
  await card.getByRole('button', { name: 'Sie stimmen überein' }).click();
  await statusSays(page, 'Geprüft: Dieses Spielzeug hat die Schlüssel, die dein Haushalt unterschrieben hat.', server);
  await expectTranslated(page, 'family-toy-checked');
});

test('a Spanish browser gets Spanish, a French one English; the switch changes the language and keeps it', { timeout: 120000 }, async () => {
  const wav = makeVoiceWav(work, 'Hola.');
  const spanish = await openBrowser(wav, { locale: 'es-MX' });
  const french = await openBrowser(wav, { locale: 'fr-FR' });
  try {
    const page = spanish.page;
    await page.goto(`${server.url}/signup`);
    await page.getByRole('heading', { name: 'Crea tu cuenta de pawpost' }).waitFor();
    await expectTranslated(page, 'sign-up', { lang: 'es', tells: SPANISH_TELLS });
    await page.getByLabel('Correo electrónico').fill('abuela@example.com');
    await page.getByLabel('Tu nombre (como te conoce tu familia)').fill('Abuela Rosa');
    await page.getByLabel('Contraseña', { exact: true }).fill(STRONG);
    await page.getByRole('button', { name: 'Crear cuenta' }).click();
    await page.getByRole('heading', { name: 'Tus hogares' }).waitFor();
    await expectTranslated(page, 'households', { lang: 'es', tells: SPANISH_TELLS });
    await page.goto(`${server.url}/security`);
    await page.getByRole('heading', { name: 'Seguridad' }).waitFor();
    await expectTranslated(page, 'security', { lang: 'es', tells: SPANISH_TELLS });

    // The switch: English now, after a reload too, and back to Spanish.
    await page.getByLabel('Idioma').selectOption('en');
    await page.getByRole('heading', { name: 'Security' }).waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    await page.reload();
    await page.getByRole('heading', { name: 'Security' }).waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('pawpost-language')), 'en');
    await page.getByLabel('Language').selectOption('es');
    await page.getByRole('heading', { name: 'Seguridad' }).waitFor();
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'es');

    // pawpost does not speak French: English, and the page says so in <html lang>.
    await french.page.goto(`${server.url}/signin`);
    await french.page.getByRole('heading', { name: 'Sign in to pawpost' }).waitFor();
    assert.equal(await french.page.evaluate(() => document.documentElement.lang), 'en');
    // The check the German pages passed does find English where there is English.
    const frenchWords = await pageWords(french.page);
    assert.ok(GERMAN_TELLS.filter((s) => frenchWords.includes(s)).length >= 3, `the English page shows the catalogue's English:\n${frenchWords}`);
    assert.deepEqual(await french.page.evaluate(() => [...document.querySelectorAll('#language option')].map((o) => `${o.getAttribute('value')}:${o.textContent}`)), [
      'en:English',
      'de:Deutsch',
      'es:Español',
    ]);
    assert.deepEqual(spanish.errors, []);
    assert.deepEqual(french.errors, []);
  } finally {
    await spanish.close();
    await french.close();
  }
  assert.deepEqual(parent.errors, []);
  assert.deepEqual(oma.errors, []);
});
