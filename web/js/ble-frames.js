/**
 * The `pawpost-ble` fragment format in the browser: the phone relay cuts the server's
 * frames into GATT writes and rebuilds the toy's frames from its notifications, exactly as
 * the Rust crate does (the shared vectors in test-vectors/ble-fragments-v1.json hold both
 * to the same bytes). Frames are opaque here: nothing reads what they say.
 *
 * A fragment: flags (bit 0 first, bit 1 last), the frame's sequence number (u16 LE), the
 * fragment's index (u16 LE), in the first fragment the frame's length (u32 LE), the next
 * bytes of the frame, and in the last fragment a CRC-32 over sequence number, length and
 * frame (u32 LE).
 */

/** Smallest ATT MTU. */
export const MIN_ATT_MTU = 23;
/** Largest ATT MTU. */
export const MAX_ATT_MTU = 517;
/** Bytes of an ATT write or notification taken by its opcode and handle. */
export const ATT_OVERHEAD = 3;
/** Largest frame a toy ever sends or needs. */
export const MAX_FRAME_LEN = 64 * 1024;
const HEADER_LEN = 5;
const TOTAL_LEN_LEN = 4;
const CRC_LEN = 4;
const FLAG_FIRST = 0x01;
const FLAG_LAST = 0x02;

/** A fragment stream's damage, named as `pawpost_ble::BleError`'s variants are. */
export class BleError extends Error {
  /**
   * @param {string} kind the variant's name, e.g. `CrcMismatch`
   * @param {string} message
   */
  constructor(kind, message) {
    super(message);
    this.name = 'BleError';
    this.kind = kind;
  }
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i;
    for (let bit = 0; bit < 8; bit++) r = r & 1 ? (r >>> 1) ^ 0xedb88320 : r >>> 1;
    table[i] = r >>> 0;
  }
  return table;
})();

/**
 * @param {number} crc the running value (already inverted)
 * @param {Uint8Array} data
 * @returns {number}
 */
function crcUpdate(crc, data) {
  for (const b of data) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ b) & 0xff];
  return crc >>> 0;
}

/**
 * CRC-32/ISO-HDLC over the sequence number, the length and the frame.
 * @param {number} seq
 * @param {Uint8Array} frame
 * @returns {number}
 */
export function frameCrc(seq, frame) {
  const prefix = new Uint8Array(6);
  const view = new DataView(prefix.buffer);
  view.setUint16(0, seq, true);
  view.setUint32(2, frame.length, true);
  return (crcUpdate(crcUpdate(0xffffffff, prefix), frame) ^ 0xffffffff) >>> 0;
}

/**
 * The largest fragment at this MTU.
 * @param {number} mtu
 * @returns {number}
 */
export function attPayloadLen(mtu) {
  if (!Number.isInteger(mtu) || mtu < MIN_ATT_MTU || mtu > MAX_ATT_MTU) {
    throw new BleError('InvalidMtu', `ATT MTU ${mtu} is outside ${MIN_ATT_MTU}..=${MAX_ATT_MTU}`);
  }
  return mtu - ATT_OVERHEAD;
}

/** Cuts frames into fragments for one connection, numbering them. */
export class Fragmenter {
  /**
   * @param {number} mtu
   * @param {number} [firstSeq]
   */
  constructor(mtu, firstSeq = 0) {
    this.payloadLen = attPayloadLen(mtu);
    this.nextSeq = firstSeq & 0xffff;
  }

  /**
   * The fragments of one frame, in order.
   * @param {Uint8Array} frame
   * @returns {Uint8Array[]}
   */
  fragment(frame) {
    if (frame.length > MAX_FRAME_LEN) {
      throw new BleError('FrameTooLarge', `frame of ${frame.length} bytes exceeds the ${MAX_FRAME_LEN}-byte limit`);
    }
    const seq = this.nextSeq;
    this.nextSeq = (seq + 1) & 0xffff;
    const crc = frameCrc(seq, frame);
    const out = [];
    let offset = 0;
    for (let index = 0; ; index++) {
      const first = index === 0;
      const buf = new Uint8Array(this.payloadLen);
      const view = new DataView(buf.buffer);
      let pos = HEADER_LEN;
      if (first) {
        view.setUint32(pos, frame.length, true);
        pos += TOTAL_LEN_LEN;
      }
      const room = this.payloadLen - pos;
      const remaining = frame.length - offset;
      // The CRC never splits: a fragment is last only when the rest and the CRC both fit.
      const last = remaining + CRC_LEN <= room;
      const n = Math.min(remaining, room);
      buf.set(frame.subarray(offset, offset + n), pos);
      pos += n;
      offset += n;
      if (last) {
        view.setUint32(pos, crc, true);
        pos += CRC_LEN;
      }
      buf[0] = (first ? FLAG_FIRST : 0) | (last ? FLAG_LAST : 0);
      view.setUint16(1, seq, true);
      view.setUint16(3, index, true);
      out.push(buf.slice(0, pos));
      if (last) return out;
    }
  }
}

/**
 * @typedef {{ seq: number, missed: number, data: Uint8Array }} Frame
 * @typedef {{ first: boolean, last: boolean, seq: number, index: number, total: number,
 *   data: Uint8Array, crc: number }} Parsed
 */

/**
 * @param {Uint8Array} fragment
 * @param {number} payloadLen
 * @returns {Parsed}
 */
function parse(fragment, payloadLen) {
  const len = fragment.length;
  if (len > payloadLen) {
    throw new BleError('FragmentTooLong', `fragment of ${len} bytes exceeds the ${payloadLen}-byte ATT payload`);
  }
  if (len < HEADER_LEN) throw new BleError('TruncatedHeader', `fragment of ${len} bytes is too short for its header`);
  const view = new DataView(fragment.buffer, fragment.byteOffset, fragment.byteLength);
  const flags = fragment[0];
  if (flags & ~(FLAG_FIRST | FLAG_LAST)) throw new BleError('ReservedFlags', `fragment flags ${flags} set reserved bits`);
  const first = (flags & FLAG_FIRST) !== 0;
  const last = (flags & FLAG_LAST) !== 0;
  const seq = view.getUint16(1, true);
  const index = view.getUint16(3, true);
  if (first !== (index === 0)) throw new BleError('BadIndex', `fragment index ${index} contradicts its first-fragment flag`);
  let start = HEADER_LEN;
  let end = len;
  let total = 0;
  if (first) {
    if (end - start < TOTAL_LEN_LEN) throw new BleError('TruncatedHeader', `fragment of ${len} bytes is too short for its header`);
    total = view.getUint32(start, true);
    start += TOTAL_LEN_LEN;
  }
  let crc = 0;
  if (last) {
    if (end - start < CRC_LEN) throw new BleError('MissingCrc', 'last fragment is too short to hold the frame CRC');
    end -= CRC_LEN;
    crc = view.getUint32(end, true);
  }
  return { first, last, seq, index, total, data: fragment.subarray(start, end), crc };
}

/** Rebuilds frames for one connection; memory is bounded by the largest frame. */
export class Reassembler {
  /**
   * @param {number} mtu
   * @param {number} [maxFrameLen]
   */
  constructor(mtu, maxFrameLen = MAX_FRAME_LEN) {
    this.payloadLen = attPayloadLen(mtu);
    if (maxFrameLen > MAX_FRAME_LEN) {
      throw new BleError('FrameTooLarge', `frame of ${maxFrameLen} bytes exceeds the ${MAX_FRAME_LEN}-byte limit`);
    }
    this.maxFrameLen = maxFrameLen;
    /** @type {Uint8Array[]} */
    this.parts = [];
    this.received = 0;
    /** @type {{ seq: number, nextIndex: number, total: number } | null} */
    this.receiving = null;
    /** @type {number | null} */
    this.lastDelivered = null;
    /**
     * The frame dropped for a gap and the fragment it lacked, so that the late arrival of
     * that fragment is recognised as reordering.
     * @type {{ seq: number, index: number } | null}
     */
    this.gap = null;
  }

  /** Forgets everything, as for a new connection. */
  reset() {
    this.parts = [];
    this.received = 0;
    this.receiving = null;
    this.lastDelivered = null;
    this.gap = null;
  }

  /**
   * Takes one fragment; returns the frame it completes, or null. Throws a {@link BleError}
   * for damage: duplicates and stale frames leave the frame in progress as it was, a frame
   * interrupted by a new one goes on with the new one, anything else drops the frame in
   * progress and waits for a first fragment.
   * @param {Uint8Array} fragment
   * @returns {Frame | null}
   */
  push(fragment) {
    let parsed;
    try {
      parsed = parse(fragment, this.payloadLen);
    } catch (e) {
      throw this.#drop(/** @type {BleError} */ (e));
    }
    if (parsed.first) return this.#start(parsed);
    if (parsed.seq === this.lastDelivered) {
      throw new BleError('DuplicateFragment', `fragment ${parsed.index} of frame ${parsed.seq} received twice; ignored`);
    }
    const receiving = this.receiving;
    if (!receiving) {
      if (this.gap && this.gap.seq === parsed.seq && this.gap.index === parsed.index) {
        throw new BleError('OutOfOrderFragment', `fragment ${parsed.index} of frame ${parsed.seq} arrived out of order`);
      }
      throw new BleError('NoFrameInProgress', `fragment ${parsed.index} of frame ${parsed.seq} arrived with no frame in progress`);
    }
    if (parsed.seq !== receiving.seq) {
      throw this.#drop(new BleError('WrongFrame', `a fragment of frame ${parsed.seq} arrived inside frame ${receiving.seq}`));
    }
    if (parsed.index < receiving.nextIndex) {
      throw new BleError('DuplicateFragment', `fragment ${parsed.index} of frame ${parsed.seq} received twice; ignored`);
    }
    if (parsed.index > receiving.nextIndex) {
      const gap = { seq: receiving.seq, index: receiving.nextIndex };
      const e = this.#drop(new BleError('MissingFragment', `frame ${gap.seq}: fragment ${parsed.index} came where ${gap.index} was expected`));
      this.gap = gap;
      throw e;
    }
    receiving.nextIndex = (receiving.nextIndex + 1) & 0xffff;
    return this.#append(parsed, receiving.total);
  }

  /**
   * @param {Parsed} parsed
   * @returns {Frame | null}
   */
  #start(parsed) {
    if (this.receiving && this.receiving.seq === parsed.seq) {
      throw new BleError('DuplicateFragment', `fragment 0 of frame ${parsed.seq} received twice; ignored`);
    }
    if (this.lastDelivered !== null) {
      const distance = (parsed.seq - this.lastDelivered) & 0xffff;
      if (distance === 0) throw new BleError('DuplicateFrame', `frame ${parsed.seq} received twice; ignored`);
      if (distance >= 0x8000) {
        throw new BleError('StaleFrame', `frame ${parsed.seq} arrived after frame ${this.lastDelivered}; ignored`);
      }
    }
    if (parsed.total > this.maxFrameLen) {
      throw this.#drop(new BleError('FrameTooLarge', `frame of ${parsed.total} bytes exceeds the ${this.maxFrameLen}-byte limit`));
    }
    const interrupted = this.receiving ? this.receiving.seq : null;
    this.gap = null;
    this.parts = [];
    this.received = 0;
    this.receiving = { seq: parsed.seq, nextIndex: 1, total: parsed.total };
    const frame = this.#append(parsed, parsed.total);
    if (interrupted !== null && !parsed.last) {
      throw new BleError('FrameInterrupted', `frame ${interrupted} never finished: a new frame started`);
    }
    return frame;
  }

  /**
   * @param {Parsed} parsed
   * @param {number} total
   * @returns {Frame | null}
   */
  #append(parsed, total) {
    if (this.received + parsed.data.length > total) {
      throw this.#drop(new BleError('LengthOverrun', `fragments carry more than the announced ${total} bytes`));
    }
    this.parts.push(parsed.data.slice());
    this.received += parsed.data.length;
    if (!parsed.last) return null;
    if (this.received !== total) {
      throw this.#drop(new BleError('FrameShort', `frame ended after ${this.received} of its announced ${total} bytes`));
    }
    const data = new Uint8Array(total);
    let offset = 0;
    for (const part of this.parts) {
      data.set(part, offset);
      offset += part.length;
    }
    if (frameCrc(parsed.seq, data) !== parsed.crc) {
      throw this.#drop(new BleError('CrcMismatch', `frame ${parsed.seq} fails its CRC: corrupted`));
    }
    const missed = this.lastDelivered === null ? 0 : (parsed.seq - this.lastDelivered - 1) & 0xffff;
    this.receiving = null;
    this.parts = [];
    this.received = 0;
    this.lastDelivered = parsed.seq;
    return { seq: parsed.seq, missed, data };
  }

  /**
   * @param {BleError} error
   * @returns {BleError}
   */
  #drop(error) {
    this.receiving = null;
    this.parts = [];
    this.received = 0;
    this.gap = null;
    return error;
  }
}
