/**
 * Small helpers: building DOM nodes (text only ever goes in through textContent, never
 * innerHTML), base64url, and UUIDs as 16 bytes.
 */
import { formatDateTime } from './i18n.js';

/**
 * Creates an element. `attrs` keys: `class`, `text`, `on<event>` handlers, `dataset`, or
 * any attribute (set with setAttribute, so never parsed as HTML). Children are nodes,
 * strings (as text nodes) or falsy (skipped).
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...(Node | string | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') el.textContent = String(value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return el;
}

/**
 * @param {Uint8Array} bytes
 * @returns {string} unpadded base64url
 */
export function toB64url(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * @param {string} text base64url, padded or not
 * @returns {Uint8Array}
 */
export function fromB64url(text) {
  const s = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * @param {string} uuid
 * @returns {Uint8Array} its 16 bytes
 */
export function uuidBytes(uuid) {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a UUID: ${uuid}`);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * @param {Uint8Array} bytes 16 bytes
 * @returns {string}
 */
export function bytesUuid(bytes) {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** @returns {Uint8Array} a random (version 4) UUID's bytes */
export function randomUuidBytes() {
  return uuidBytes(crypto.randomUUID());
}

/**
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 */
export function sameBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * "0:07" style, in whole seconds cut down as a media player counts them (its controls show
 * 0:04 for 4.6 seconds), so that a length written beside a player agrees with it.
 * @param {number} ms
 */
export function formatDuration(ms) {
  const s = Math.floor(Math.max(0, ms) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * A moment in the page's language and local time.
 * @param {string} iso
 */
export function formatTime(iso) {
  return formatDateTime(iso);
}
