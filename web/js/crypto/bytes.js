/**
 * Byte helpers and the strict big-endian reader and writer behind every format, so that all
 * decoders refuse a short input, a trailing byte and a non-canonical boolean the same way.
 */
import { fail } from './errors.js';

/** The version byte that starts every structure of format v1. */
export const FORMAT_VERSION = 1;

const encoder = new TextEncoder();

/**
 * ASCII/UTF-8 bytes of a string (domain separation strings).
 * @param {string} text
 * @returns {Uint8Array}
 */
export function utf8(text) {
  return encoder.encode(text);
}

/**
 * @param {...Uint8Array} parts
 * @returns {Uint8Array}
 */
export function concat(...parts) {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/**
 * Byte-wise equality. Not constant-time: used only on public values (ids, digests that an
 * attacker already knows).
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {boolean}
 */
export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Lexicographic order of two byte strings of any length (roster members sort by device id).
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {number} negative, zero or positive
 */
export function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * @param {Uint8Array} bytes
 * @returns {string} lowercase hex
 */
export function toHex(bytes) {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/**
 * @param {string} hex an even number of hex digits
 * @returns {Uint8Array}
 */
export function fromHex(hex) {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError('not an even-length hex string');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * Throws a TypeError unless `bytes` is a Uint8Array of exactly `length` bytes: a caller's
 * mistake, not a property of untrusted input.
 * @param {Uint8Array} bytes
 * @param {number} length
 * @param {string} what
 * @returns {Uint8Array}
 */
export function expectLength(bytes, length, what) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new TypeError(`${what} must be ${length} bytes`);
  }
  return bytes;
}

/** A cursor over bytes that fails with `truncated` instead of reading past the end. */
export class Reader {
  /** @param {Uint8Array} bytes */
  constructor(bytes) {
    /** @private */
    this.bytes = bytes;
    /** @private */
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    /** Offset of the next unread byte. */
    this.offset = 0;
  }

  /** @returns {number} bytes not read yet */
  remaining() {
    return this.bytes.length - this.offset;
  }

  /**
   * @param {number} length
   * @returns {Uint8Array} a view of the next `length` bytes
   */
  take(length) {
    if (this.remaining() < length) fail('truncated', 'input is truncated');
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /** @returns {Uint8Array} a copy, so decoded values do not alias the input */
  copy(/** @type {number} */ length) {
    return this.take(length).slice();
  }

  /** @returns {number} */
  u8() {
    return this.take(1)[0];
  }

  /** @returns {number} */
  u16() {
    const at = this.offset;
    this.take(2);
    return this.view.getUint16(at);
  }

  /** @returns {number} */
  i16() {
    const at = this.offset;
    this.take(2);
    return this.view.getInt16(at);
  }

  /** @returns {number} */
  u32() {
    const at = this.offset;
    this.take(4);
    return this.view.getUint32(at);
  }

  /** @returns {bigint} full u64 range, which a JS number cannot hold exactly */
  u64() {
    const at = this.offset;
    this.take(8);
    return this.view.getBigUint64(at);
  }

  /** @returns {boolean} exactly 0 or 1, so that each value has one encoding */
  bool() {
    const b = this.u8();
    if (b > 1) fail('invalid_bool', 'boolean byte is neither 0 nor 1');
    return b === 1;
  }

  /** Refuses anything but format version 1. */
  version() {
    if (this.u8() !== FORMAT_VERSION) fail('unsupported_version', 'unsupported format version');
  }

  /** Ends a strict decode: anything left over is an error. */
  finish() {
    if (this.remaining() !== 0) {
      fail('trailing_bytes', 'unexpected bytes after the end of the structure');
    }
  }
}

/**
 * Appends big-endian fields. Values out of a field's range throw a RangeError: that is a
 * caller's bug, and silently wrapping would sign something other than what was meant.
 */
export class Writer {
  constructor() {
    /** @private @type {Uint8Array[]} */
    this.parts = [];
  }

  /**
   * @private
   * @param {number} value
   * @param {number} min
   * @param {number} max
   * @param {string} type
   */
  static check(value, min, max, type) {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new RangeError(`${value} does not fit in ${type}`);
    }
  }

  /** @param {Uint8Array} bytes */
  bytes(bytes) {
    this.parts.push(bytes);
    return this;
  }

  /** @param {number} value */
  u8(value) {
    Writer.check(value, 0, 0xff, 'u8');
    return this.bytes(Uint8Array.of(value));
  }

  /** @param {number} value */
  u16(value) {
    Writer.check(value, 0, 0xffff, 'u16');
    return this.bytes(Uint8Array.of(value >>> 8, value & 0xff));
  }

  /** @param {number} value */
  i16(value) {
    Writer.check(value, -0x8000, 0x7fff, 'i16');
    return this.u16(value & 0xffff);
  }

  /** @param {number} value */
  u32(value) {
    Writer.check(value, 0, 0xffffffff, 'u32');
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, value);
    return this.bytes(out);
  }

  /** @param {number | bigint} value */
  u64(value) {
    const big = BigInt(value);
    if (big < 0n || big > 0xffffffffffffffffn) throw new RangeError(`${value} does not fit in u64`);
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, big);
    return this.bytes(out);
  }

  /** @param {boolean} value */
  bool(value) {
    return this.u8(value ? 1 : 0);
  }

  /** @returns {Uint8Array} */
  finish() {
    return concat(...this.parts);
  }
}
