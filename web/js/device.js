/**
 * This browser's device: its own keys (non-extractable, in IndexedDB), registered with the
 * server once per account. Each account signed in here gets its own device id, so two
 * people sharing a computer never share keys.
 */
import { api, ApiError } from './api.js';
import { encodePublicIdentity, fingerprint, loadOrCreateDeviceKeys } from './crypto/index.js';
import { bytesUuid, randomUuidBytes, toB64url, uuidBytes } from './util.js';
import { t } from './i18n.js';

/**
 * @typedef {{
 *   id: string,
 *   keys: import('./crypto/identity.js').DeviceKeys,
 *   fingerprint: string,
 * }} ThisDevice
 */

/** @param {string} accountId */
const storageKey = (accountId) => `pawpost.device.${accountId}`;

function deviceLabel() {
  const nav = /** @type {any} */ (navigator);
  const platform = nav.userAgentData?.platform || navigator.platform || '';
  const browser = /Firefox\//.test(navigator.userAgent)
    ? 'Firefox'
    : /Edg\//.test(navigator.userAgent)
      ? 'Edge'
      : /Chrom(e|ium)\//.test(navigator.userAgent)
        ? 'Chrome'
        : /Safari\//.test(navigator.userAgent)
          ? 'Safari'
          : t('Browser');
  return platform ? t('{browser} on {platform}', { browser, platform }) : browser;
}

/**
 * Loads (or makes) this browser's keys for `accountId` and registers their public half.
 * @param {string} accountId
 * @returns {Promise<ThisDevice>}
 */
export async function ensureDevice(accountId) {
  let id = localStorage.getItem(storageKey(accountId));
  if (!id) {
    id = bytesUuid(randomUuidBytes());
    localStorage.setItem(storageKey(accountId), id);
  }
  const keys = await loadOrCreateDeviceKeys(uuidBytes(id));
  /** @type {{ device_id: string }[]} */
  const mine = await api('GET', '/api/v1/devices');
  if (!mine.some((d) => d.device_id === id)) {
    try {
      await api('POST', '/api/v1/devices', {
        identity: toB64url(encodePublicIdentity(keys.public)),
        label: deviceLabel(),
      });
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 'device_exists')) throw e;
      // The id is taken by someone else's device: start over with a fresh one.
      localStorage.removeItem(storageKey(accountId));
      return ensureDevice(accountId);
    }
  }
  return { id, keys, fingerprint: await fingerprint(keys.public) };
}

/**
 * Forgets this browser's device for an account that no longer exists: its id and its
 * private keys (removed from IndexedDB, so nothing of the account stays behind here).
 * @param {string} accountId
 * @param {string} [deviceId]
 */
export async function forgetDevice(accountId, deviceId) {
  localStorage.removeItem(storageKey(accountId));
  if (!deviceId) return;
  const key = deviceId.replace(/-/g, '').toLowerCase();
  await new Promise((resolve) => {
    const request = indexedDB.open('pawpost-keys', 1);
    // Same layout as the key store makes, should the database not exist yet.
    request.onupgradeneeded = () => request.result.createObjectStore('device-keys');
    request.onerror = () => resolve(undefined);
    request.onsuccess = () => {
      const db = request.result;
      if (!db.objectStoreNames.contains('device-keys')) {
        db.close();
        resolve(undefined);
        return;
      }
      const tx = db.transaction('device-keys', 'readwrite');
      tx.objectStore('device-keys').delete(key);
      tx.oncomplete = tx.onabort = tx.onerror = () => {
        db.close();
        resolve(undefined);
      };
    };
  });
}
