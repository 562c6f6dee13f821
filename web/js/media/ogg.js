/**
 * Ogg Opus (RFC 3533, RFC 7845) writing and reading, byte-compatible with the server's
 * reference writer (crates/pawpost-media, OggOpusWriter): OpusHead alone on the first page
 * (BOS), OpusTags ending the second, audio pages closed once their body reaches 4096 bytes,
 * granule positions counting 48 kHz samples of every packet, the last page marked EOS.
 * Runs in browsers and in Node.
 */
import { packetSamples } from './opus.js';

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let k = 0; k < 8; k++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

/**
 * Ogg's CRC-32: polynomial 0x04C11DB7, initial value 0, no reflection, no final xor.
 * @param {Uint8Array} data
 * @returns {number}
 */
export function oggCrc(data) {
  let crc = 0;
  for (let i = 0; i < data.length; i++) {
    crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ data[i]) & 0xff]) >>> 0;
  }
  return crc >>> 0;
}

export const FLAG_CONTINUED = 0x01;
export const FLAG_BOS = 0x02;
export const FLAG_EOS = 0x04;
/** Granule position of a page on which no packet ends. */
export const NO_GRANULE = 0xffffffffffffffffn;
export const PAGE_TARGET_BYTES = 4096;
export const VENDOR = 'pawpost';
const MAX_AUDIO_PACKET_BYTES = 60 * 1024;
const GRANULE_TOLERANCE_SAMPLES = 5760;

/**
 * @param {number} flags
 * @param {bigint} granule
 * @param {number} serial
 * @param {number} sequence
 * @param {number[]} segments lacing values
 * @param {Uint8Array[]} body
 * @returns {Uint8Array}
 */
function page(flags, granule, serial, sequence, segments, body) {
  const bodyLen = body.reduce((n, b) => n + b.length, 0);
  const out = new Uint8Array(27 + segments.length + bodyLen);
  const view = new DataView(out.buffer);
  out.set([0x4f, 0x67, 0x67, 0x53, 0, flags]);
  view.setBigUint64(6, granule, true);
  view.setUint32(14, serial >>> 0, true);
  view.setUint32(18, sequence >>> 0, true);
  out[26] = segments.length;
  out.set(segments, 27);
  let at = 27 + segments.length;
  for (const b of body) {
    out.set(b, at);
    at += b.length;
  }
  view.setUint32(22, oggCrc(out), true);
  return out;
}

/**
 * The 19-byte OpusHead of channel mapping family 0.
 * @param {number} channels 1 or 2
 * @param {number} preSkip
 * @param {number} [inputSampleRate]
 * @returns {Uint8Array}
 */
export function opusHead(channels, preSkip, inputSampleRate = 48000) {
  const out = new Uint8Array(19);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode('OpusHead'));
  out[8] = 1;
  out[9] = channels;
  view.setUint16(10, preSkip, true);
  view.setUint32(12, inputSampleRate, true);
  view.setInt16(16, 0, true);
  out[18] = 0;
  return out;
}

/**
 * OpusTags with a vendor string and no comments.
 * @param {string} vendor
 * @returns {Uint8Array}
 */
export function opusTags(vendor) {
  const v = new TextEncoder().encode(vendor);
  const out = new Uint8Array(8 + 4 + v.length + 4);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode('OpusTags'));
  view.setUint32(8, v.length, true);
  out.set(v, 12);
  view.setUint32(12 + v.length, 0, true);
  return out;
}

/** Writes one Ogg Opus stream into memory. */
export class OggOpusWriter {
  /**
   * @param {number} channels 1 or 2
   * @param {number} preSkip samples at 48 kHz the decoder drops from the start
   * @param {number} serial the stream's serial number
   */
  constructor(channels, preSkip, serial) {
    if (channels !== 1 && channels !== 2) throw new RangeError(`unsupported channel count ${channels}`);
    /** @type {Uint8Array[]} */
    this.pages = [];
    this.serial = serial >>> 0;
    this.sequence = 0;
    this.preSkip = preSkip;
    this.samples = 0;
    this.packets = 0;
    /** @type {number[]} */
    this.segments = [];
    /** @type {Uint8Array[]} */
    this.body = [];
    this.bodyLen = 0;
    this.continued = false;
    this.granule = NO_GRANULE;
    this.addPacket(opusHead(channels, preSkip), 0n);
    this.flush(FLAG_BOS);
    this.addPacket(opusTags(VENDOR), 0n);
    this.flush(0);
  }

  /**
   * Appends one audio packet; returns its duration in 48 kHz samples.
   * @param {Uint8Array} packet
   * @returns {number}
   */
  pushPacket(packet) {
    const samples = packetSamples(packet);
    if (packet.length > MAX_AUDIO_PACKET_BYTES) throw new RangeError('Opus packet too large');
    if (this.bodyLen >= PAGE_TARGET_BYTES || this.segments.length === 255) this.flush(0);
    this.samples += samples;
    this.packets += 1;
    this.addPacket(packet, BigInt(this.samples));
    return samples;
  }

  /**
   * Ends the stream and returns the file.
   * @param {number} [endTrim] samples cut from the end through the last granule position
   * @returns {Uint8Array}
   */
  finish(endTrim = 0) {
    if (this.packets === 0) throw new RangeError('no audio');
    if (endTrim > GRANULE_TOLERANCE_SAMPLES) throw new RangeError('end trim too large');
    const granule = Math.max(0, this.samples - endTrim);
    if (granule < this.preSkip) throw new RangeError('pre-skip exceeds the length');
    this.granule = BigInt(granule);
    this.flush(FLAG_EOS);
    const total = this.pages.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of this.pages) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** Duration so far in milliseconds, after the pre-skip. */
  get durationMs() {
    return Math.max(0, Math.round(((this.samples - this.preSkip) * 1000) / 48000));
  }

  /**
   * @param {Uint8Array} packet
   * @param {bigint} granule
   */
  addPacket(packet, granule) {
    let rest = packet;
    for (;;) {
      const n = Math.min(rest.length, 255);
      this.segments.push(n);
      this.body.push(rest.subarray(0, n));
      this.bodyLen += n;
      rest = rest.subarray(n);
      if (n < 255) {
        this.granule = granule;
        return;
      }
      if (this.segments.length === 255) {
        this.flush(0);
        this.continued = true;
      }
    }
  }

  /** @param {number} flags */
  flush(flags) {
    const f = this.continued ? flags | FLAG_CONTINUED : flags;
    this.pages.push(page(f, this.granule, this.serial, this.sequence, this.segments, this.body));
    this.sequence += 1;
    this.segments = [];
    this.body = [];
    this.bodyLen = 0;
    this.continued = false;
    this.granule = NO_GRANULE;
  }
}

/**
 * @typedef {{
 *   flags: number, granule: bigint, serial: number, sequence: number,
 *   segments: Uint8Array, body: Uint8Array, length: number,
 * }} OggPage
 */

/**
 * Parses the page at `offset`, checking its capture pattern, version and CRC.
 * @param {Uint8Array} data
 * @param {number} offset
 * @returns {OggPage}
 */
export function parsePage(data, offset) {
  if (offset + 27 > data.length) throw new Error(`truncated page header at ${offset}`);
  const view = new DataView(data.buffer, data.byteOffset + offset);
  if (data[offset] !== 0x4f || data[offset + 1] !== 0x67 || data[offset + 2] !== 0x67 || data[offset + 3] !== 0x53) {
    throw new Error(`no OggS capture pattern at ${offset}`);
  }
  if (data[offset + 4] !== 0) throw new Error('unsupported Ogg version');
  const count = data[offset + 26];
  if (offset + 27 + count > data.length) throw new Error('truncated segment table');
  const segments = data.subarray(offset + 27, offset + 27 + count);
  const bodyLen = segments.reduce((n, s) => n + s, 0);
  const length = 27 + count + bodyLen;
  if (offset + length > data.length) throw new Error('truncated page body');
  const copy = data.slice(offset, offset + length);
  copy.fill(0, 22, 26);
  const stored = view.getUint32(22, true);
  if (oggCrc(copy) !== stored) throw new Error(`bad CRC on page at ${offset}`);
  return {
    flags: data[offset + 5],
    granule: view.getBigUint64(6, true),
    serial: view.getUint32(14, true),
    sequence: view.getUint32(18, true),
    segments,
    body: data.subarray(offset + 27 + count, offset + length),
    length,
  };
}

/**
 * Reads and checks a whole Ogg Opus file with the rules of the server's validator: one
 * stream, BOS first and EOS last, consecutive sequence numbers, continuation flags that
 * match, OpusHead alone on page one, OpusTags ending its own page, header granules 0,
 * granule positions never going back and within 120 ms of the packets' samples, every
 * packet's framing valid.
 * @param {Uint8Array} bytes
 * @returns {{ channels: number, preSkip: number, serial: number, pageCount: number,
 *   packets: Uint8Array[], durationMs: number, durationSamples: number }}
 */
export function readOggOpus(bytes) {
  if (bytes.length === 0) throw new Error('empty file');
  /** @type {Uint8Array[]} */
  const packets = [];
  /** @type {number[]} */
  let partial = [];
  let inPacket = false;
  let offset = 0;
  let pageCount = 0;
  let serial = -1;
  let head = null;
  let tags = false;
  let tagsPage = -1;
  let samples = 0;
  let granule = -1n;
  for (;;) {
    const p = parsePage(bytes, offset);
    pageCount += 1;
    if (pageCount === 1) {
      if (!(p.flags & FLAG_BOS)) throw new Error('first page is not BOS');
      serial = p.serial;
    } else if (p.flags & FLAG_BOS || p.serial !== serial) {
      throw new Error('second logical stream');
    }
    if (p.sequence !== pageCount - 1) throw new Error(`sequence gap at page ${pageCount}`);
    if (Boolean(p.flags & FLAG_CONTINUED) !== inPacket) throw new Error('continuation flag mismatch');
    const headerPage = !tags;
    let ended = 0;
    let at = 0;
    for (const lacing of p.segments) {
      partial.push(...p.body.subarray(at, at + lacing));
      at += lacing;
      inPacket = true;
      if (lacing === 255) continue;
      ended += 1;
      inPacket = false;
      const packet = Uint8Array.from(partial);
      partial = [];
      if (!head) {
        const view = new DataView(packet.buffer);
        if (packet.length < 19 || new TextDecoder().decode(packet.subarray(0, 8)) !== 'OpusHead') {
          throw new Error('missing OpusHead');
        }
        if (packet[8] !== 1) throw new Error('unsupported OpusHead version');
        head = { channels: packet[9], preSkip: view.getUint16(10, true) };
        if (head.channels < 1 || head.channels > 2) throw new Error('bad channel count');
      } else if (!tags) {
        if (pageCount === 1) throw new Error('OpusHead is not alone on its page');
        if (new TextDecoder().decode(packet.subarray(0, 8)) !== 'OpusTags') throw new Error('missing OpusTags');
        tags = true;
        tagsPage = pageCount;
      } else {
        if (tagsPage === pageCount) throw new Error('OpusTags does not end its page');
        samples += packetSamples(packet);
        packets.push(packet);
      }
    }
    if (pageCount === 1 && (ended !== 1 || inPacket)) throw new Error('OpusHead is not alone on its page');
    if (tagsPage === pageCount && inPacket) throw new Error('OpusTags does not end its page');
    if (p.granule === NO_GRANULE) {
      if (ended > 0) throw new Error('page ends a packet without a granule position');
    } else if (headerPage) {
      if (p.granule !== 0n) throw new Error('header granule is not 0');
    } else {
      if (p.granule < granule) throw new Error('granule goes backwards');
      const diff = Number(p.granule) - samples;
      if (Math.abs(diff) > GRANULE_TOLERANCE_SAMPLES) throw new Error('granule does not match the samples');
      granule = p.granule;
    }
    offset += p.length;
    if (p.flags & FLAG_EOS) {
      if (inPacket) throw new Error('unterminated packet');
      if (offset !== bytes.length) throw new Error('data after EOS');
      break;
    }
    if (offset === bytes.length) throw new Error('missing EOS');
  }
  if (!head || !tags) throw new Error('missing headers');
  if (packets.length === 0 || granule < 0n) throw new Error('no audio');
  const durationSamples = Number(granule) - head.preSkip;
  if (durationSamples < 0) throw new Error('pre-skip exceeds the length');
  return {
    channels: head.channels,
    preSkip: head.preSkip,
    serial,
    pageCount,
    packets,
    durationSamples,
    durationMs: Math.round((durationSamples * 1000) / 48000),
  };
}
