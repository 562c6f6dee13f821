/**
 * Where a device keeps its own keys. In the browser the private keys are non-extractable
 * CryptoKeys stored in IndexedDB, which keeps them as opaque objects: no script, including
 * this one, can read their bytes, so a later XSS can use but not steal them.
 */
import { toHex } from './bytes.js';
import { generateDeviceKeys } from './identity.js';

/**
 * Storage for one kind of record, keyed by device id (hex). `add` must not overwrite: it
 * resolves to `false` if the key exists, so two tabs starting at once agree on one key set.
 * @typedef {{
 *   get(id: string): Promise<import('./identity.js').DeviceKeys | undefined>,
 *   add(id: string, keys: import('./identity.js').DeviceKeys): Promise<boolean>,
 * }} KeyStore
 */

const DB_VERSION = 1;
const STORE_NAME = 'device-keys';

/**
 * @template T
 * @param {IDBRequest<T>} request
 * @returns {Promise<T>}
 */
function settle(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * A key store in IndexedDB (browser only).
 * @param {string} [dbName]
 * @returns {KeyStore}
 */
export function indexedDbKeyStore(dbName = 'pawpost-keys') {
  /** @type {Promise<IDBDatabase> | undefined} */
  let db;
  const open = () => {
    if (!db) {
      const request = indexedDB.open(dbName, DB_VERSION);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE_NAME);
      db = settle(request);
    }
    return db;
  };
  return {
    async get(id) {
      const tx = (await open()).transaction(STORE_NAME, 'readonly');
      return settle(tx.objectStore(STORE_NAME).get(id));
    },
    async add(id, keys) {
      const tx = (await open()).transaction(STORE_NAME, 'readwrite');
      const request = tx.objectStore(STORE_NAME).add(keys, id);
      return new Promise((resolve, reject) => {
        tx.oncomplete = () => resolve(true);
        // add() never overwrites: a ConstraintError means another tab stored keys first.
        tx.onabort = () =>
          request.error?.name === 'ConstraintError'
            ? resolve(false)
            : reject(tx.error ?? request.error);
      });
    },
  };
}

/**
 * A key store in memory, for tests and for Node. Values are structured-cloned in and out,
 * as IndexedDB does, so tests see the same copying behaviour.
 * @returns {KeyStore}
 */
export function memoryKeyStore() {
  /** @type {Map<string, import('./identity.js').DeviceKeys>} */
  const map = new Map();
  return {
    async get(id) {
      const keys = map.get(id);
      return keys && structuredClone(keys);
    },
    async add(id, keys) {
      if (map.has(id)) return false;
      map.set(id, structuredClone(keys));
      return true;
    },
  };
}

/**
 * This device's keys: loaded if stored, otherwise generated (non-extractable) and stored.
 * @param {Uint8Array} deviceId 16 bytes
 * @param {KeyStore} [store] IndexedDB by default
 * @returns {Promise<import('./identity.js').DeviceKeys>}
 */
export async function loadOrCreateDeviceKeys(deviceId, store = indexedDbKeyStore()) {
  const id = toHex(deviceId);
  const stored = await store.get(id);
  if (stored) return stored;
  const keys = await generateDeviceKeys(deviceId);
  if (await store.add(id, keys)) return keys;
  const winner = await store.get(id);
  if (!winner) throw new Error('device keys vanished from the key store');
  return winner;
}
