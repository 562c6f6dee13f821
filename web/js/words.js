import { t } from './i18n.js';
/**
 * What the screen says for each error code the server answers with: plain words for a
 * grandparent, each saying what to do. The server's own sentence (`ApiError.detail`)
 * is for developers and logs; it is never shown. A form that knows which field an
 * error concerns shows these words beside that field (see `fieldFor`).
 */

/** @type {Readonly<Record<string, string>>} */
export const ERROR_WORDS = Object.freeze({
  // Signing up and signing in.
  unauthenticated: t('You are signed out. Sign in again to go on.'),
  session_expired: t('You were signed out, perhaps from another device. Sign in again to go on.'),
  wrong_credentials: t('That email address and password do not match an account. Check both and try again, or choose "Forgot password?".'),
  wrong_password: t('That is not your password. Check it and try again.'),
  email_taken: t('An account with this email address exists already: sign in instead, or choose "Forgot password?" if you do not remember the password.'),
  invalid_email: t('This does not look like an email address. Check it and try again.'),
  invalid_name: t('Use a name of 1 to 100 letters, without special signs at the start or end.'),
  password_rejected: t('This password does not meet the rules listed under it. Choose a few unrelated words instead.'),
  account_locked: t('This account is locked. Ask the people who run this pawpost server to unlock it.'),
  rate_limited: t('That was tried too many times. Wait a few minutes, then try again.'),
  busy: t('pawpost is busy right now. Wait a moment, then try again.'),
  reset_link_invalid: t('This link no longer works: it was already used, or the password was changed since it was sent. Ask for a new link.'),
  reset_link_expired: t('This link is too old, so it no longer works. Ask for a new link.'),
  reset_under_way: t('A new password is being set for this account right now. Wait a moment, then sign in.'),
  verification_link_invalid: t('This link no longer works: it was already used, or it is not complete. Ask for a new link.'),
  verification_link_expired: t('This link is too old, so it no longer works. Ask for a new link.'),
  email_already_verified: t('Your email address is confirmed already. There is nothing more to do.'),
  // Passkeys.
  passkeys_unavailable: t('Passkeys cannot be used on this pawpost server. Use your email address and password instead.'),
  passkey_unknown: t('This passkey is not known here. Use another one, or your email address and password.'),
  passkey_refused: t('Your phone or computer gave an answer this site cannot use. Try again, or use your email address and password.'),
  wrong_passkey: t('This passkey was not accepted here. Try another one, or sign in with your email address and password.'),
  ceremony_expired: t('That took too long. Try again.'),
  ceremony_unknown: t('That took too long. Try again.'),
  too_many_passkeys: t('Your account has as many passkeys as it can hold. Remove one you no longer use, then add the new one.'),
  last_sign_in_method: t('This is the only way left to sign in to your account, so it cannot be removed. Set a password or add another passkey first.'),
  recovery_material_size: t('The recovery details are too large to keep. Make a new recovery sheet and try again.'),
  // Families.
  not_found: t('This was not found: it may have been deleted. Go back to your households and try again.'),
  pending_approval: t('A parent of this household has not approved you yet. You can use it once they do.'),
  blocked: t('A parent of this household has blocked you, so you cannot send or hear messages here.'),
  blocked_here: t('You were blocked in this household, so this invitation cannot be used. Ask a parent of the household if you think this is a mistake.'),
  not_a_parent: t('Only a parent of this household can do this. Ask a parent.'),
  not_an_owner: t('Only an owner of this household can do this. Ask the parent who owns it.'),
  role_not_grantable: t('You cannot give that role. Choose a role like your own or a lesser one.'),
  invitation_unknown: t('This invitation link does not work. Ask the parent who invited you for a new link.'),
  invitation_spent: t('This invitation link was used already, or it is too old. Ask the parent who invited you for a new link.'),
  already_member: t('You are in this household already. Open it from your households page.'),
  self: t('You cannot do this to yourself. Ask another parent of the household.'),
  not_allowed: t('You cannot do this in this household. Ask a parent.'),
  wrong_status: t('This changed a moment ago. Reload the page to see how things are now.'),
  last_owner: t('You are the only owner of a household. Make another parent an owner on its Family page, or delete the household first.'),
  conflict: t('This exists already. Reload the page to see it.'),
  // The household keys and devices.
  no_roster: t('This household has no keys yet. A parent opens the household once to make them; then try again.'),
  roster_refused: t("The household keys could not be updated: another parent's device may have changed them at the same moment. Reload the page and try again."),
  roster_version_taken: t("The household keys could not be updated: another parent's device changed them at the same moment. Reload the page and try again."),
  signer_not_owner: t("Only an owner's browser can sign this. Ask the household's owner to do it."),
  not_your_device: t('This browser is not one of your devices any more. Reload the page; if that does not help, sign out and sign in again.'),
  not_in_roster: t('This browser is not in the household keys yet. A parent opens the household to add it; then try again.'),
  device_exists: t('This browser is registered already. Reload the page.'),
  invalid_identity: t("This browser's keys could not be read. Reload the page; if that does not help, sign out and sign in again."),
  same_device: t('This is the browser you are using. Choose another device.'),
  already_certified: t('This device is linked already. There is nothing more to do.'),
  bad_certificate: t('The link between your devices did not check out. Start again on the new device.'),
  invalid_query: t('Something in the page is out of date. Reload it and try again.'),
  // Messages.
  unknown_recipient: t('Someone this message was meant for is no longer in the household. Reload the page and record it again.'),
  toy_plays_only_voice: t('The toy can only play voice messages.'),
  duplicate_message: t('This message was sent already.'),
  invalid_envelope: t('This message could not be sent as it was. Record it again.'),
  bad_payload: t('This message could not be sent as it was. Record it again.'),
  bad_signature: t("This browser's signature did not check out. Reload the page and try again."),
  invalid_signature: t("This browser's signature did not check out. Reload the page and try again."),
  wrong_household: t('This message belongs to another household. Reload the page and try again.'),
  envelope_too_large: t('This message is too long to send. Record a shorter one.'),
  body_too_large: t('This is too large to send. Make it shorter and try again.'),
  upload_interrupted: t('The message was cut off on its way. Check your connection and send it again.'),
  // Toys.
  invalid_code: t('The code has six digits. Type the six digits the toy speaks.'),
  pairing_code_unknown: t("No toy is waiting with this code. Check the six digits, or hold the toy's paw until it speaks a new code."),
  pairing_code_contested: t("Someone else typed this code too, so it no longer works. Hold the toy's paw until it speaks a new code, then type that one."),
  toy_not_found: t('This toy is no longer in the household. Reload the page.'),
  names_too_large: t('These names are too long for the toy. Make them shorter, then save again.'),
  invalid_names: t('The names could not be saved as they were. Reload the page and save them again.'),
  toy_protocol_too_old: t("This toy's software is too old for this pawpost server. Update the toy's software, then connect it again."),
  // The app and the browser.
  network: t('Could not reach pawpost. Check your internet connection and try again.'),
  csrf: t('This page is out of date. Reload it and try again.'),
  cross_site: t('This page is out of date. Reload it and try again.'),
  invalid_json: t('Something in the page is out of date. Reload it and try again.'),
  invalid_base64: t('Something in the page is out of date. Reload it and try again.'),
  invalid_path: t('This address is not complete. Go back to your households and try again.'),
  unsupported_media_type: t('Something in the page is out of date. Reload it and try again.'),
  method_not_allowed: t('Something in the page is out of date. Reload it and try again.'),
  internal: t('Something went wrong on the pawpost server. Try again in a moment; if it keeps happening, tell the people who run it.'),
});

/**
 * The plain words for an error the server answered with `code` (and HTTP `status`).
 * @param {string} code
 * @param {number} [status]
 * @returns {string}
 */
export function errorWords(code, status = 0) {
  if (Object.hasOwn(ERROR_WORDS, code)) return ERROR_WORDS[code];
  if (status === 401) return ERROR_WORDS.unauthenticated;
  if (status === 403) return t('You cannot do this here. Ask a parent of the household.');
  if (status === 404) return ERROR_WORDS.not_found;
  if (status === 413) return ERROR_WORDS.body_too_large;
  if (status === 429) return ERROR_WORDS.rate_limited;
  if (status === 503) return ERROR_WORDS.busy;
  if (status >= 500) return ERROR_WORDS.internal;
  return t('Something went wrong. Reload the page and try again.');
}

/**
 * Which field of a sign-up or sign-in form an error code concerns (null: the form as a
 * whole), so its words appear beside that field.
 * @param {string} code
 * @returns {'email' | 'display_name' | 'password' | null}
 */
export function fieldFor(code) {
  if (code === 'invalid_email' || code === 'email_taken') return 'email';
  if (code === 'invalid_name') return 'display_name';
  if (code === 'password_rejected' || code === 'wrong_password') return 'password';
  return null;
}

/**
 * Which password rule the server says a new password breaks, in plain words.
 * @param {{ detail?: string }} err a `password_rejected` answer (an ApiError)
 */
export function passwordRejectedWords(err) {
  const said = err.detail ?? '';
  const short = /at least (\d+) characters \(it has (\d+)\)/.exec(said);
  if (said.includes('min_length') && short) {
    return t('This password is too short: it needs at least {value} characters and has {value2}. A few unrelated words make a long password that is easy to remember.', { value: short[1], value2: short[2] });
  }
  const long = /at most (\d+) characters/.exec(said);
  if (said.includes('max_length') && long) return t('This password is too long: it can have at most {value} characters.', { value: long[1] });
  if (said.includes('blocklist')) {
    return t('This password is too easy to guess: it is a common or leaked password, a keyboard pattern or repetition, or it contains your email address or name. Choose a few unrelated words instead.');
  }
  return t('This password does not meet the rules listed under it. Choose a few unrelated words instead.');
}
