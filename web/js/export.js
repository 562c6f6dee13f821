/**
 * "Export my data": the server's JSON archive of everything it holds about the account,
 * and the messages in it that this browser's device can open, checked and decrypted here.
 */
import { api, ApiError } from './api.js';
import { openEnvelope, parseEnvelope } from './crypto/index.js';
import { loadRoster } from './household-keys.js';
import { fromB64url, sameBytes } from './util.js';
import { t } from './i18n.js';

/**
 * @typedef {{
 *   message: any,
 *   sender: string,
 *   payload: Uint8Array | null,
 *   error: string | null,
 * }} ExportedItem
 * @typedef {{ id: string, name: string, items: ExportedItem[], elsewhere: number }} ExportedHousehold
 */

/**
 * Downloads the archive as the server wrote it.
 * @returns {Promise<{ text: string, archive: any, filename: string }>}
 */
export async function fetchExport() {
  let res;
  try {
    res = await fetch('/api/v1/accounts/me/export', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  } catch {
    throw new ApiError(0, 'network', t('Could not reach pawpost. Check your connection and try again.'));
  }
  const text = await res.text();
  let archive = null;
  try {
    archive = JSON.parse(text);
  } catch {
    // handled below
  }
  if (!res.ok) {
    throw new ApiError(res.status, archive?.error ?? `http_${res.status}`, archive?.message ?? t('The server answered {status}.', { status: res.status }));
  }
  if (!archive || typeof archive !== 'object' || !Array.isArray(archive.households)) {
    throw new Error(t('The server sent an archive this app cannot read.'));
  }
  const day = new Date().toISOString().slice(0, 10);
  return { text, archive, filename: `pawpost-export-${day}.json` };
}

/**
 * Names for a household's senders, from its member and device lists (best effort).
 * @param {string} householdId
 * @returns {Promise<(m: any) => string>}
 */
async function senderNames(householdId) {
  /** @type {any[]} */
  let members = [];
  /** @type {any[]} */
  let devices = [];
  try {
    [members, devices] = await Promise.all([
      api('GET', `/api/v1/households/${householdId}/members`),
      api('GET', `/api/v1/households/${householdId}/devices`),
    ]);
  } catch {
    // Names are a nicety: the messages open without them.
  }
  return (m) => {
    const device = devices.find((d) => d.device_id === m.sender_device);
    if (device?.kind === 'toy' || (!m.sender_account && device === undefined)) return t('The toy');
    const member = members.find((x) => x.account_id === m.sender_account);
    return member ? member.display_name : t('A former member');
  };
}

/**
 * Opens every message of the archive sealed for this browser's device. A sender must be
 * listed in the household's checked roster (blocked members too: their messages were
 * theirs to send at the time) and its signature must verify before anything is decrypted.
 * @param {import('./device.js').ThisDevice} device
 * @param {any} archive
 * @returns {Promise<ExportedHousehold[]>}
 */
export async function openArchive(device, archive) {
  /** @type {ExportedHousehold[]} */
  const out = [];
  for (const hh of archive.households) {
    /** @type {any[]} */
    const messages = Array.isArray(hh.messages) ? hh.messages : [];
    if (messages.length === 0) continue;
    const mine = messages.filter((m) => m.recipients?.some((/** @type {any} */ r) => r.device_id === device.id));
    /** @type {ExportedHousehold} */
    const entry = { id: hh.id, name: hh.name, items: [], elsewhere: messages.length - mine.length };
    out.push(entry);
    if (mine.length === 0) continue;
    /** @type {import('./crypto/roster.js').SignedRoster | null} */
    let signed = null;
    /** @type {string | null} */
    let rosterError = null;
    try {
      signed = await loadRoster(hh.id);
      if (!signed) rosterError = t('the household has no keys');
    } catch (e) {
      rosterError = t('the household keys could not be checked: {reason}', { reason: e instanceof Error ? e.message : String(e) });
    }
    const nameOf = await senderNames(hh.id);
    for (const m of mine.sort((a, b) => (a.created_at < b.created_at ? -1 : 1))) {
      /** @type {ExportedItem} */
      const item = { message: m, sender: m.sender_device === device.id ? t('You') : nameOf(m), payload: null, error: rosterError };
      entry.items.push(item);
      if (!signed) continue;
      try {
        const bytes = fromB64url(m.envelope);
        const { prefix } = parseEnvelope(bytes);
        const member = signed.roster.members.find((x) => sameBytes(x.deviceId, prefix.header.sender));
        if (!member) throw new Error(t('its sender is no longer in the household keys'));
        const opened = await openEnvelope(bytes, device.keys, { deviceId: member.deviceId, x25519Pub: member.x25519Pub, ed25519Pub: member.ed25519Pub });
        item.payload = opened.payload;
      } catch (e) {
        item.error = e instanceof Error ? e.message : String(e);
      }
    }
  }
  return out;
}
