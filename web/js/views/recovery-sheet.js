/**
 * The household's recovery code on a sheet to print or copy by hand, and the check that
 * the parent saved it (typing two of its groups back).
 *
 * Use:
 * ```js
 * const sheet = renderRecoverySheet({ householdName, code, createdAt: new Date() });
 * const prompt = confirmSavedPrompt(code);
 * const form = h('form', {}, prompt.element, h('button', { type: 'submit', text: 'I saved it' }));
 * form.addEventListener('submit', (e) => {
 *   e.preventDefault();
 *   if (!prompt.check()) return prompt.showError('Those are not the groups of your code…');
 *   prompt.showError('');
 *   // … the code is saved
 * });
 * container.append(sheet, form);
 * ```
 * Printing: web/css/print.css (linked from index.html) prints only the sheet whenever one
 * is on the page (`body:has(.recovery-sheet)`), whether through its Print button or the
 * browser's own menu: the app's header, the page's other parts (the confirm form too) and
 * the Print button are left out, and the sheet is black on white even in dark mode. The
 * caller needs to do nothing but keep the sheet in the document; remove it (for example
 * once the code is saved) and printing shows the page as usual.
 */
import { RECOVERY_CODE_GROUP } from '../crypto/recovery.js';
import { qrSvgElement } from '../qr.js';
import { h } from '../util.js';
import { formatDate, t } from '../i18n.js';

/** Pixels per module of the sheet's QR code on screen (print.css sets its printed size). */
const QR_MODULE_SIZE = 5;
/** How many groups the parent types back. */
const GROUPS_ASKED = 2;

/** Numbers the ids of the prompts' fields, so that two prompts on a page never clash. */
let promptCount = 0;

/**
 * A recovery code (or part of one) as the app compares it: upper case, without spaces or
 * hyphens, with O read as 0 and I or L as 1, as Crockford's base32 reads them.
 * @param {string} text
 */
export function normalizeRecoveryText(text) {
  return String(text).toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
}

/**
 * The code's groups of four characters, normalized.
 * @param {string} code
 * @returns {string[]}
 */
export function recoveryCodeGroups(code) {
  const clean = normalizeRecoveryText(code);
  /** @type {string[]} */
  const groups = [];
  for (let i = 0; i < clean.length; i += RECOVERY_CODE_GROUP) groups.push(clean.slice(i, i + RECOVERY_CODE_GROUP));
  return groups;
}

/**
 * @param {Date | string | number} when
 */
function longDate(when) {
  const date = when instanceof Date ? when : new Date(when);
  return Number.isNaN(date.getTime()) ? String(when) : formatDate(date);
}

/**
 * The printable sheet: the title "Recovery code for <household>", the code in large
 * monospaced groups (numbered, as the confirm prompt asks for groups by number), its QR
 * code, the date it was made, what to do with the paper, and a Print button.
 * @param {{ householdName: string, code: string, createdAt: Date | string | number, headingLevel?: number }} options
 *   `code` as `generateRecoveryCode` gives it (hyphens or spaces optional); `headingLevel`
 *   of the sheet's title, 2 by default (under the page's h1).
 * @returns {HTMLElement} a `<section class="recovery-sheet">`
 */
export function renderRecoverySheet({ householdName, code, createdAt, headingLevel = 2 }) {
  const groups = recoveryCodeGroups(code);
  const text = groups.join('-');
  const title = t('Recovery code for {householdName}', { householdName });
  const codeLine = h('p', { class: 'recovery-code', translate: 'no' });
  groups.forEach((group, i) => {
    if (i > 0) codeLine.append(h('span', { class: 'recovery-code-dash', text: '-' }));
    codeLine.append(h('span', { class: 'recovery-code-group', text: group }));
  });
  const qr = qrSvgElement(text, { moduleSize: QR_MODULE_SIZE, label: t('QR code of the recovery code for {householdName}', { householdName }) });
  const print = h('button', { type: 'button', class: 'primary recovery-sheet-print', text: t('Print') });
  print.addEventListener('click', () => window.print());
  return h(
    'section',
    { class: 'recovery-sheet' },
    h(`h${Math.min(6, Math.max(1, Math.trunc(headingLevel)))}`, { class: 'recovery-sheet-title', text: title }),
    codeLine,
    h('div', { class: 'recovery-sheet-qr' }, qr),
    h('p', { class: 'recovery-sheet-date', text: t('Made on {value}', { value: longDate(createdAt) }) }),
    h(
      'div',
      { class: 'recovery-sheet-instructions' },
      h('p', { text: t('Keep this paper somewhere safe, like where you keep passports.') }),
      h('p', { text: t('If you lose your phone or computer, sign in to pawpost on a new one and enter this code to look after your family again.') }),
      h('p', { text: t("Anyone with this code and your password can run your family's toy, so do not share it.") }),
    ),
    print,
  );
}

/**
 * Two distinct group numbers (1-based) out of `count`, in order, drawn at random.
 * @param {number} count
 * @returns {number[]}
 */
function drawGroups(count) {
  const picked = new Set();
  const random = new Uint32Array(1);
  while (picked.size < Math.min(GROUPS_ASKED, count)) {
    crypto.getRandomValues(random);
    picked.add((random[0] % count) + 1);
  }
  return [...picked].sort((a, b) => a - b);
}

/**
 * Asks the parent to type two groups of the code back ("Type group 3 and group 6 of your
 * code"), to show it was written down or printed. The element is two labelled fields
 * ("Group 3", "Group 6") with room for an error beside them, and no button or form of its
 * own: put it in the caller's form.
 * @param {string} code
 * @param {{ groups?: number[] }} [options] `groups`: the two group numbers (1-based) to ask
 *   for; two at random by default
 * @returns {{
 *   element: HTMLElement,
 *   groups: number[],
 *   inputs: HTMLInputElement[],
 *   check: (...typed: string[]) => boolean,
 *   showError: (text: string) => void,
 * }}
 *   `check()` tells whether the fields hold the groups asked for (or, given strings, whether
 *   those do), ignoring case, spaces and hyphens and reading O as 0 and I or L as 1;
 *   `showError(text)` shows `text` beside the first wrong field and marks the wrong fields,
 *   and `showError('')` clears it.
 */
export function confirmSavedPrompt(code, options = {}) {
  const all = recoveryCodeGroups(code);
  const groups = options.groups ?? drawGroups(all.length);
  for (const n of groups) {
    if (!Number.isInteger(n) || n < 1 || n > all.length) throw new RangeError(`There is no group ${n}: the code has ${all.length} groups.`);
  }
  const prefix = `confirm-saved-${++promptCount}`;
  const question = h('p', {
    class: 'confirm-saved-question',
    id: `${prefix}-question`,
    text: t('To show that you saved your code, type {value} of your code.', { value: groups.map((n) => t('group {n}', { n })).join(t(' and ')) }),
  });
  const fields = groups.map((n) => {
    const id = `${prefix}-group-${n}`;
    const error = h('p', { class: 'error field-error', id: `${id}-error`, role: 'alert' });
    const input = /** @type {HTMLInputElement} */ (
      h('input', {
        id,
        name: `group-${n}`,
        type: 'text',
        class: 'confirm-saved-group',
        autocomplete: 'off',
        autocapitalize: 'characters',
        spellcheck: 'false',
        size: 8,
        'aria-describedby': `${prefix}-question ${id}-error`,
      })
    );
    const wrap = h('div', { class: 'field' }, h('label', { for: id, text: t('Group {n}', { n }) }), input, error);
    return { n, input, error, wrap };
  });
  /**
   * @param {number} n
   * @param {string} typed
   */
  const matches = (n, typed) => normalizeRecoveryText(typed) === all[n - 1];
  return {
    element: h('div', { class: 'confirm-saved-prompt' }, question, h('div', { class: 'row confirm-saved-fields' }, ...fields.map((f) => f.wrap))),
    groups,
    inputs: fields.map((f) => f.input),
    check: (...typed) => fields.every((f, i) => matches(f.n, typed[i] ?? f.input.value)),
    showError(text) {
      const wrong = fields.filter((f) => !matches(f.n, f.input.value));
      const shown = text ? (wrong[0] ?? fields[0]) : null;
      for (const f of fields) {
        f.error.textContent = f === shown ? text : '';
        if (text && (wrong.includes(f) || f === shown)) f.input.setAttribute('aria-invalid', 'true');
        else f.input.removeAttribute('aria-invalid');
      }
    },
  };
}
