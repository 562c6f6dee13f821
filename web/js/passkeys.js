/**
 * Passkeys: signing up and in with the phone's or computer's fingerprint, face or
 * screen lock (WebAuthn), adding and removing passkeys, and recovery material kept on
 * the server under a key only the passkey gives this page.
 *
 * Every ceremony asks the authenticator for its PRF output (the `prf` extension, with
 * SALT = SHA-256 of "pawpost/v1/passkey-prf"). The PRF output never leaves the browser:
 * it is stripped from what is posted, and turned at once into a non-extractable AES-GCM
 * key (HKDF-SHA256, info "pawpost/v1/recovery-wrap") held in this module for this page
 * only, never stored. Recovery material is sealed with that key as
 * `version (1) || nonce (12) || AES-GCM ciphertext`, its additional data
 * "pawpost/v1/recovery-material" followed by the account id, and kept with the passkey
 * that gave the key.
 */
import { api, ApiError } from './api.js';
import { fromB64url, h, toB64url } from './util.js';
import { formatDateTime, t } from './i18n.js';

const PRF_SALT_LABEL = 'pawpost/v1/passkey-prf';
const WRAP_INFO = 'pawpost/v1/recovery-wrap';
const MATERIAL_AAD_LABEL = 'pawpost/v1/recovery-material';
const MATERIAL_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** The server's MAX_RECOVERY_MATERIAL_BYTES, for the sealed blob. */
export const MAX_RECOVERY_MATERIAL_BYTES = 4096;
/** The most material that fits once sealed. */
export const MAX_RECOVERY_PLAINTEXT_BYTES = MAX_RECOVERY_MATERIAL_BYTES - 1 - NONCE_BYTES - TAG_BYTES;

/** Plain words on screen, beside the passkey buttons. */
export const PASSKEY_WORDS = t("Use a passkey: your phone or computer's fingerprint, face or screen lock.");

const encoder = new TextEncoder();

/**
 * The key derived from the PRF output of the passkey used on this page, with that
 * passkey's id and its account's id. Module state only.
 * @type {{ key: CryptoKey, passkeyId: string, accountId: string } | null}
 */
let prfKey = null;

/** @returns {boolean} whether this browser can make and use passkeys at all */
export function passkeysSupported() {
  return (
    typeof window !== 'undefined' &&
    typeof window.PublicKeyCredential === 'function' &&
    typeof navigator.credentials?.create === 'function' &&
    typeof navigator.credentials?.get === 'function'
  );
}

/** @returns {boolean} whether a PRF-derived key is available in this page */
export function hasPrfKey() {
  return prfKey !== null;
}

/** @returns {Promise<Uint8Array<ArrayBuffer>>} */
async function prfSalt() {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(PRF_SALT_LABEL)));
}

/**
 * @param {string} text unpadded base64url
 * @returns {ArrayBuffer}
 */
function buffer(text) {
  const bytes = fromB64url(text);
  return /** @type {ArrayBuffer} */ (bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/**
 * @param {ArrayBuffer | null | undefined} b
 * @returns {string | undefined}
 */
function b64(b) {
  return b ? toB64url(new Uint8Array(b)) : undefined;
}

/**
 * `navigator.credentials.create` options from the server's JSON, asking for the PRF.
 * @param {any} json `{ publicKey: ... }`, binary fields as base64url
 * @returns {Promise<CredentialCreationOptions>}
 */
async function creationOptions(json) {
  const pk = json.publicKey;
  return {
    publicKey: {
      ...pk,
      challenge: buffer(pk.challenge),
      user: { ...pk.user, id: buffer(pk.user.id) },
      excludeCredentials: (pk.excludeCredentials ?? []).map((/** @type {any} */ c) => ({ ...c, id: buffer(c.id) })),
      extensions: { ...(pk.extensions ?? {}), prf: { eval: { first: await prfSalt() } } },
    },
  };
}

/**
 * `navigator.credentials.get` options from the server's JSON, asking for the PRF.
 * @param {any} json `{ publicKey: ... }`, binary fields as base64url
 * @returns {Promise<CredentialRequestOptions>}
 */
async function requestOptions(json) {
  const pk = json.publicKey;
  return {
    publicKey: {
      ...pk,
      challenge: buffer(pk.challenge),
      allowCredentials: (pk.allowCredentials ?? []).map((/** @type {any} */ c) => ({ ...c, id: buffer(c.id) })),
      extensions: { ...(pk.extensions ?? {}), prf: { eval: { first: await prfSalt() } } },
    },
  };
}

/**
 * The client extension results that may be posted: never `prf` (its output is the key
 * to the recovery material), and only plain JSON values.
 * @param {PublicKeyCredential} credential
 * @returns {Record<string, unknown>}
 */
export function postableExtensions(credential) {
  const results = /** @type {Record<string, unknown>} */ (credential.getClientExtensionResults());
  /** @type {Record<string, unknown>} */
  const out = {};
  for (const [name, value] of Object.entries(results)) {
    if (name === 'prf') continue;
    const plain = JSON.stringify(value, (_k, v) => (v instanceof ArrayBuffer || ArrayBuffer.isView(v) ? undefined : v));
    if (plain !== undefined) out[name] = JSON.parse(plain);
  }
  return out;
}

/**
 * The PRF output the authenticator gave, if it gave one.
 * @param {PublicKeyCredential} credential
 * @returns {ArrayBuffer | null}
 */
function prfOutput(credential) {
  const results = /** @type {any} */ (credential.getClientExtensionResults());
  const first = results?.prf?.results?.first;
  if (first instanceof ArrayBuffer) return first;
  if (ArrayBuffer.isView(first)) return /** @type {ArrayBuffer} */ (first.buffer.slice(first.byteOffset, first.byteOffset + first.byteLength));
  return null;
}

/**
 * Keeps the key derived from `output` for this page.
 * @param {ArrayBuffer} output
 * @param {string} passkeyId
 * @param {string} accountId
 */
async function keepPrfKey(output, passkeyId, accountId) {
  const ikm = await crypto.subtle.importKey('raw', output, 'HKDF', false, ['deriveKey']);
  const key = await crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: encoder.encode(WRAP_INFO) },
    ikm,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
  prfKey = { key, passkeyId, accountId };
}

/**
 * A new passkey's credential as the server reads it.
 * @param {PublicKeyCredential} credential
 */
function newCredentialJson(credential) {
  const response = /** @type {AuthenticatorAttestationResponse} */ (credential.response);
  return {
    id: credential.id,
    rawId: b64(credential.rawId),
    type: credential.type,
    response: {
      attestationObject: b64(response.attestationObject),
      clientDataJSON: b64(response.clientDataJSON),
      transports: typeof response.getTransports === 'function' ? response.getTransports() : undefined,
    },
    extensions: postableExtensions(credential),
  };
}

/**
 * An assertion as the server reads it.
 * @param {PublicKeyCredential} credential
 */
function assertionJson(credential) {
  const response = /** @type {AuthenticatorAssertionResponse} */ (credential.response);
  return {
    id: credential.id,
    rawId: b64(credential.rawId),
    type: credential.type,
    response: {
      authenticatorData: b64(response.authenticatorData),
      clientDataJSON: b64(response.clientDataJSON),
      signature: b64(response.signature),
      userHandle: b64(response.userHandle),
    },
    extensions: postableExtensions(credential),
  };
}

/**
 * @param {CredentialCreationOptions} options
 * @returns {Promise<PublicKeyCredential>}
 */
async function create(options) {
  if (!passkeysSupported()) throw new PasskeyUnsupported();
  const credential = await navigator.credentials.create(options);
  if (!(credential instanceof PublicKeyCredential)) throw new Error(t('The browser made no passkey. Try again.'));
  return credential;
}

/**
 * @param {CredentialRequestOptions} options
 * @returns {Promise<PublicKeyCredential>}
 */
async function get(options) {
  if (!passkeysSupported()) throw new PasskeyUnsupported();
  const credential = await navigator.credentials.get(options);
  if (!(credential instanceof PublicKeyCredential)) throw new Error(t('The browser gave no passkey. Try again.'));
  return credential;
}

/**
 * After a passkey was made: its PRF key, from the creation when the authenticator gave
 * the output then, otherwise from one more touch of the new passkey (nothing is sent).
 * A passkey without the PRF leaves no key: recovery material cannot be kept with it.
 * @param {PublicKeyCredential} credential
 * @param {string} passkeyId
 * @param {string} accountId
 */
async function keyFromNewPasskey(credential, passkeyId, accountId) {
  let output = prfOutput(credential);
  const enabled = /** @type {any} */ (credential.getClientExtensionResults())?.prf?.enabled;
  if (!output && enabled) {
    try {
      const touched = await get({
        publicKey: {
          challenge: crypto.getRandomValues(new Uint8Array(32)),
          allowCredentials: [{ type: 'public-key', id: credential.rawId }],
          userVerification: 'required',
          extensions: { prf: { eval: { first: await prfSalt() } } },
        },
      });
      output = prfOutput(touched);
    } catch (e) {
      console.warn('the new passkey gave no key for recovery material', e);
    }
  }
  if (output) await keepPrfKey(output, passkeyId, accountId);
}

/**
 * Signs up with a new passkey instead of a password.
 * @param {string} email
 * @param {string} displayName
 * @returns {Promise<any>} the session, as a password sign-in answers (for `app.signedIn`)
 */
export async function signUpWithPasskey(email, displayName) {
  const start = await api('POST', '/api/v1/accounts/passkey', { email, display_name: displayName });
  const credential = await create(await creationOptions(start.options));
  const session = await api('POST', `/api/v1/accounts/passkey/${start.ceremony}`, { credential: newCredentialJson(credential) });
  await keyFromNewPasskey(credential, session.passkey.id, session.account.id);
  return session;
}

/**
 * Signs in with a passkey the browser offers (no email address needed).
 * @returns {Promise<any>} the session, as a password sign-in answers (for `app.signedIn`)
 */
export async function signInWithPasskey() {
  const start = await api('POST', '/api/v1/sessions/passkey');
  const credential = await get(await requestOptions(start.options));
  const output = prfOutput(credential);
  const session = await api('POST', `/api/v1/sessions/passkey/${start.ceremony}`, { credential: assertionJson(credential) });
  prfKey = null;
  if (output) await keepPrfKey(output, session.passkey.id, session.account.id);
  return session;
}

/**
 * Adds a passkey to the signed-in account.
 * @param {string} accountId
 * @param {string} [label]
 * @returns {Promise<any>} the passkey (id, label, created_at)
 */
export async function addPasskey(accountId, label) {
  const start = await api('POST', '/api/v1/passkeys/registrations', { label: label || null });
  const credential = await create(await creationOptions(start.options));
  const passkey = await api('POST', `/api/v1/passkeys/registrations/${start.ceremony}`, { credential: newCredentialJson(credential) });
  await keyFromNewPasskey(credential, passkey.id, accountId);
  return passkey;
}

/** @returns {Promise<any[]>} the account's passkeys */
export function listPasskeys() {
  return api('GET', '/api/v1/passkeys');
}

/** @param {string} id */
export async function removePasskey(id) {
  await api('DELETE', `/api/v1/passkeys/${id}`);
  if (prfKey?.passkeyId === id) prfKey = null;
}

/**
 * @param {Uint8Array} bytes
 * @returns {string} standard base64
 */
function base64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** @param {string} accountId */
function materialAad(accountId) {
  return new Uint8Array([...encoder.encode(MATERIAL_AAD_LABEL), ...encoder.encode(accountId)]);
}

/**
 * Seals `material` with the PRF key and keeps it with the passkey that gave the key.
 * @param {Uint8Array} material
 * @returns {Promise<void>}
 */
export async function saveRecoveryMaterial(material) {
  if (!prfKey) throw new Error(t('No passkey key is available on this page: sign in with your passkey first, then try again.'));
  if (material.length > MAX_RECOVERY_PLAINTEXT_BYTES) {
    throw new Error(t('Recovery material can have at most {MAX_RECOVERY_PLAINTEXT_BYTES} bytes.', { MAX_RECOVERY_PLAINTEXT_BYTES }));
  }
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv: nonce, additionalData: materialAad(prfKey.accountId) },
      prfKey.key,
      /** @type {Uint8Array<ArrayBuffer>} */ (material),
    ),
  );
  const blob = new Uint8Array(1 + NONCE_BYTES + sealed.length);
  blob[0] = MATERIAL_VERSION;
  blob.set(nonce, 1);
  blob.set(sealed, 1 + NONCE_BYTES);
  await api('PUT', `/api/v1/passkeys/${prfKey.passkeyId}/recovery-material`, { material: base64(blob) });
}

/**
 * The recovery material kept with the passkey used on this page, opened.
 * @returns {Promise<Uint8Array | null>} null when none is kept
 */
export async function loadRecoveryMaterial() {
  if (!prfKey) throw new Error(t('No passkey key is available on this page: sign in with your passkey first, then try again.'));
  const answer = await api('GET', `/api/v1/passkeys/${prfKey.passkeyId}/recovery-material`);
  if (!answer?.material) return null;
  const blob = Uint8Array.from(atob(answer.material), (c) => c.charCodeAt(0));
  if (blob[0] !== MATERIAL_VERSION || blob.length < 1 + NONCE_BYTES + TAG_BYTES) {
    throw new Error(t('The recovery material kept with this passkey is not in a form this app reads.'));
  }
  try {
    const opened = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: blob.subarray(1, 1 + NONCE_BYTES), additionalData: materialAad(prfKey.accountId) },
      prfKey.key,
      blob.subarray(1 + NONCE_BYTES),
    );
    return new Uint8Array(opened);
  } catch {
    throw new Error(t('The recovery material kept with this passkey could not be opened with it.'));
  }
}

/** The browser cannot make or use passkeys. */
export class PasskeyUnsupported extends Error {
  constructor() {
    super(t('This browser cannot use passkeys. Sign in with your email address and password instead, or update the browser.'));
  }
}

/**
 * What to say when a passkey step failed, in plain words.
 * @param {unknown} err
 * @returns {string}
 */
export function passkeyErrorWords(err) {
  if (err instanceof PasskeyUnsupported) return err.message;
  if (err instanceof DOMException) {
    if (err.name === 'NotAllowedError' || err.name === 'AbortError') {
      return t('The passkey step was cancelled or took too long. Nothing was changed: try again when you are ready.');
    }
    if (err.name === 'InvalidStateError') return t('This phone or computer already has a passkey for your account. Use that one.');
    if (err.name === 'SecurityError') return t('Passkeys do not work at this web address. Use your email address and password instead.');
    return t('The browser could not use a passkey. Try again, or use your email address and password.');
  }
  if (err instanceof ApiError) {
    if (err.code === 'network') return t('Could not reach pawpost. Check your internet connection and try again.');
    if (err.code === 'wrong_passkey') return t('This passkey was not accepted here. Try another one, or sign in with your email address and password.');
    if (err.code === 'ceremony_expired' || err.code === 'ceremony_unknown') return t('That took too long. Try again.');
    if (err.code === 'passkey_refused') return t('Your phone or computer gave an answer this site cannot use. Try again; if it keeps happening, use your email address and password.');
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * The passkey choice under the sign-in or sign-up form: a button, the plain words, and
 * the error beside it.
 * @param {'signin' | 'signup'} mode
 * @param {() => { email: string, displayName: string } | string} fields for sign-up: what
 *   was typed, or what to say when something is missing
 * @param {(session: any) => Promise<void>} done with the new session
 * @returns {HTMLElement}
 */
export function passkeyChoice(mode, fields, done) {
  const signup = mode === 'signup';
  const error = h('p', { class: 'error', role: 'alert', id: `passkey-${mode}-error` });
  if (!passkeysSupported()) {
    return h(
      'div',
      { class: 'card passkey' },
      h('p', { class: 'muted', text: t('This browser cannot use passkeys. Use your email address and password, or update the browser to use a passkey.') }),
    );
  }
  const button = /** @type {HTMLButtonElement} */ (
    h('button', { type: 'button', text: signup ? t('Sign up with a passkey') : t('Sign in with a passkey'), 'aria-describedby': `passkey-${mode}-hint passkey-${mode}-error` })
  );
  button.addEventListener('click', async () => {
    error.textContent = '';
    button.disabled = true;
    try {
      let session;
      if (signup) {
        const typed = fields();
        if (typeof typed === 'string') throw new Error(typed);
        session = await signUpWithPasskey(typed.email, typed.displayName);
      } else {
        session = await signInWithPasskey();
      }
      await done(session);
    } catch (err) {
      error.textContent = passkeyErrorWords(err);
    } finally {
      button.disabled = false;
    }
  });
  return h(
    'div',
    { class: 'card passkey' },
    h('p', { id: `passkey-${mode}-hint`, text: signup ? `${PASSKEY_WORDS} ${t('Type your email address and name above; no password needed.')}` : PASSKEY_WORDS }),
    button,
    error,
  );
}

/**
 * Instead of changing the password, for an account made with a passkey: how to set one.
 * @returns {HTMLElement}
 */
export function noPasswordNotice() {
  return h(
    'section',
    { 'aria-labelledby': 'password-title' },
    h('h2', { id: 'password-title', text: t('Your password') }),
    h('p', { text: t('You sign in with a passkey, so this account has no password.') }),
    h('p', { text: t('A password is needed to delete the account. To set one, sign out, choose "Forgot password?" on the sign-in page, and open the link we email you.') }),
  );
}

/**
 * The Security page's passkeys: the list, adding one, removing one.
 * @param {{ account: any }} app
 * @returns {Promise<HTMLElement>}
 */
export async function passkeysSection(app) {
  const list = h('ul', { class: 'passkeys' });
  const error = h('p', { class: 'error', role: 'alert', id: 'passkeys-error' });
  const status = h('p', { role: 'status' });
  async function refresh() {
    /** @type {any[]} */
    let keys;
    try {
      keys = await listPasskeys();
    } catch (err) {
      error.textContent = passkeyErrorWords(err);
      return;
    }
    list.replaceChildren(
      ...keys.map((k) => {
        const remove = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'danger', text: t('Remove'), 'aria-label': t('Remove passkey {label}', { label: k.label }) }));
        remove.addEventListener('click', async () => {
          error.textContent = '';
          status.textContent = '';
          remove.disabled = true;
          try {
            await removePasskey(k.id);
            status.textContent = t('Passkey "{label}" removed.', { label: k.label });
            await refresh();
          } catch (err) {
            error.textContent = passkeyErrorWords(err);
            remove.disabled = false;
          }
        });
        const used = k.last_used_at ? t(' · last used {value}', { value: formatDateTime(k.last_used_at) }) : '';
        return h('li', {}, h('strong', { text: k.label }), h('div', { class: 'muted', text: t('added {when}', { when: formatDateTime(k.created_at) }) + used }), remove);
      }),
    );
    if (!keys.length) list.replaceChildren(h('li', { class: 'muted', text: t('No passkey yet.') }));
  }
  await refresh();
  const label = /** @type {HTMLInputElement} */ (h('input', { id: 'passkey-label', name: 'passkey-label', type: 'text', maxlength: '60', placeholder: t('For example: My phone'), 'aria-describedby': 'passkeys-hint passkeys-error' }));
  const add = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', text: t('Add a passkey'), 'aria-describedby': 'passkeys-hint passkeys-error' }));
  add.disabled = !passkeysSupported();
  add.addEventListener('click', async () => {
    error.textContent = '';
    status.textContent = '';
    add.disabled = true;
    try {
      const passkey = await addPasskey(app.account.id, label.value.trim());
      label.value = '';
      status.textContent = t('Passkey "{label}" added. You can now sign in with it.', { label: passkey.label });
      await refresh();
    } catch (err) {
      error.textContent = passkeyErrorWords(err);
    } finally {
      add.disabled = !passkeysSupported();
    }
  });
  return h(
    'section',
    { 'aria-labelledby': 'passkeys-title', class: 'passkeys' },
    h('h2', { id: 'passkeys-title', text: t('Passkeys') }),
    h('p', { class: 'hint', id: 'passkeys-hint', text: passkeysSupported() ? `${PASSKEY_WORDS} ${t('With a passkey you sign in without typing a password.')}` : t('This browser cannot use passkeys. Update it, or use another phone or computer to add one.') }),
    list,
    h('div', { class: 'field' }, h('label', { for: 'passkey-label', text: t('Name for a new passkey (optional)') }), label),
    add,
    error,
    status,
  );
}
