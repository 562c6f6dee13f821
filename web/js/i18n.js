/**
 * The app's words in the family's language. Every sentence on screen goes through `t`,
 * keyed by its English wording (so the code reads as the screen does); the catalogues in
 * `locales/` give each language's words for the same keys. The language is the one the
 * person chose with the switch at the foot of every page (kept in localStorage), else the
 * first of the browser's languages that pawpost speaks, else English. Dates, times,
 * numbers and plurals follow the language through `Intl`.
 */
import en from './locales/en.js';
import de from './locales/de.js';
import es from './locales/es.js';

/** @typedef {keyof typeof en} Key */
/** A sentence, or a sentence by plural category (`Intl.PluralRules`) of the `count` parameter. */
/** @typedef {string | { zero?: string, one?: string, two?: string, few?: string, many?: string, other: string }} Text */
/** @typedef {Record<Key, Text>} Catalogue */

/** The languages pawpost speaks, each named in its own words (for the switch). */
export const LANGUAGES = /** @type {const} */ ({ en: 'English', de: 'Deutsch', es: 'Español' });
/** @typedef {keyof typeof LANGUAGES} Language */

/** @type {Record<Language, Catalogue>} */
const CATALOGUES = { en, de, es };

/** Where the language chosen with the switch is kept. */
export const LANGUAGE_STORAGE_KEY = 'pawpost-language';

/**
 * The language to speak: the chosen one if pawpost speaks it, else the first of the
 * browser's preferred languages it speaks (by primary subtag: de-AT is German), else English.
 * @param {string | null} chosen
 * @param {readonly string[]} preferred
 * @returns {Language}
 */
export function chooseLanguage(chosen, preferred) {
  for (const tag of [chosen ?? '', ...preferred]) {
    const primary = tag.toLowerCase().split('-')[0];
    if (Object.hasOwn(LANGUAGES, primary)) return /** @type {Language} */ (primary);
  }
  return 'en';
}

/** @returns {string | null} */
function storedLanguage() {
  try {
    return localStorage.getItem(LANGUAGE_STORAGE_KEY);
  } catch {
    return null;
  }
}

/** The language of this page. */
export const lang = chooseLanguage(
  storedLanguage(),
  typeof navigator === 'undefined' ? [] : (navigator.languages ?? [navigator.language]),
);
// Outside a page (the unit tests under Node) there is no document to label.
if (typeof document !== 'undefined') document.documentElement.lang = lang;

const plurals = new Intl.PluralRules(lang);

/**
 * The words for `key` in this page's language, with `{name}` placeholders filled from
 * `params`. A plural sentence picks its form by `params.count`.
 * @param {Key} key
 * @param {Record<string, string | number>} [params]
 * @returns {string}
 */
export function t(key, params = {}) {
  // A key no catalogue has yet (tsc flags it) shows as written.
  const text = CATALOGUES[lang][key] ?? en[key] ?? key;
  let chosen;
  if (typeof text === 'string') chosen = text;
  else {
    const count = Number(params.count ?? 0);
    chosen = text[plurals.select(count)] ?? text.other;
  }
  return chosen.replace(/\{(\w+)\}/g, (whole, name) => {
    if (!Object.hasOwn(params, name)) return whole;
    const value = params[name];
    return typeof value === 'number' ? formatNumber(value) : value;
  });
}

/**
 * Keeps the language chosen with the switch and shows the page again in it.
 * @param {Language} language
 */
export function setLanguage(language) {
  try {
    localStorage.setItem(LANGUAGE_STORAGE_KEY, language);
  } catch {
    // Storage refused (private mode): the choice lasts for this page only.
  }
  location.reload();
}

/** @param {number} n */
export function formatNumber(n) {
  return new Intl.NumberFormat(lang).format(n);
}

/** English dates are written day first, as the app always did ("4 Dec 2026 20:15"). */
const intlLocale = lang === 'en' ? 'en-GB' : lang;
const dayFormat = new Intl.DateTimeFormat(intlLocale, { day: 'numeric', month: 'short', year: 'numeric' });
const timeFormat = new Intl.DateTimeFormat(intlLocale, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const dateOnly = new Intl.DateTimeFormat(intlLocale, { dateStyle: 'long' });

/**
 * A moment as this language writes a date and time, in local time ("4 Dec 2026 20:15",
 * "4. Dez. 2026 20:15", "4 dic 2026 20:15").
 * @param {Date | string | number} when
 */
export function formatDateTime(when) {
  const d = new Date(when);
  return Number.isNaN(d.getTime()) ? String(when) : `${dayFormat.format(d)} ${timeFormat.format(d)}`;
}

/**
 * A day as this language writes it ("4 December 2026", "4. Dezember 2026").
 * @param {Date | string | number} when
 */
export function formatDate(when) {
  const d = new Date(when);
  return Number.isNaN(d.getTime()) ? String(when) : dateOnly.format(d);
}

const relative = new Intl.RelativeTimeFormat(lang, { numeric: 'auto' });
/** @type {[Intl.RelativeTimeFormatUnit, number][]} */
const UNITS = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['week', 7 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
];

/**
 * How far a moment is from now, in this language ("in 7 days", "vor 3 Minuten", "ayer").
 * @param {Date | string | number} when
 * @param {number} [now]
 */
export function formatRelative(when, now = Date.now()) {
  const seconds = (new Date(when).getTime() - now) / 1000;
  if (Number.isNaN(seconds)) return String(when);
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === 'second') return relative.format(Math.round(seconds / size), unit);
  }
  return relative.format(0, 'second');
}
