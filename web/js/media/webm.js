/**
 * Reads the Opus packets out of a WebM (Matroska) recording, as Chromium's MediaRecorder
 * writes it (`audio/webm;codecs=opus`): elements of unknown size, no lacing. Together with
 * ogg.js this remuxes a recording into the Ogg Opus file the toy plays.
 */

const ID = {
  EBML: 0x1a45dfa3,
  Segment: 0x18538067,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  CodecID: 0x86,
  CodecPrivate: 0x63a2,
  CodecDelay: 0x56aa,
  Audio: 0xe1,
  Channels: 0x9f,
  Cluster: 0x1f43b675,
  BlockGroup: 0xa0,
  Block: 0xa1,
  SimpleBlock: 0xa3,
};

/** Master elements whose children are read in place (even when their size is unknown). */
const DESCEND = new Set([
  ID.Segment,
  ID.Tracks,
  ID.TrackEntry,
  ID.Audio,
  ID.Cluster,
  ID.BlockGroup,
]);

/**
 * @param {Uint8Array} data
 * @param {number} at
 * @param {boolean} keepMarker element ids keep their length marker; sizes do not
 * @returns {{ value: number, length: number, unknown: boolean }}
 */
function readVint(data, at, keepMarker) {
  if (at >= data.length) throw new Error('truncated WebM');
  const first = data[at];
  let length = 1;
  while (length <= 8 && !(first & (0x80 >> (length - 1)))) length++;
  if (length > 8) throw new Error('invalid EBML number');
  if (at + length > data.length) throw new Error('truncated WebM');
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = value === (0xff >> length);
  for (let i = 1; i < length; i++) {
    value = value * 256 + data[at + i];
    if (data[at + i] !== 0xff) allOnes = false;
  }
  return { value, length, unknown: !keepMarker && allOnes };
}

/**
 * @param {Uint8Array} bytes
 * @returns {number}
 */
function readUint(bytes) {
  let v = 0;
  for (const b of bytes) v = v * 256 + b;
  return v;
}

/**
 * The Opus track of a WebM file and its packets in order.
 * @param {Uint8Array} data
 * @returns {{ channels: number, preSkip: number, packets: Uint8Array[] }}
 */
export function opusFromWebm(data) {
  /** @type {{ number: number, codec: string, codecPrivate: Uint8Array | null, codecDelay: number, channels: number }[]} */
  const tracks = [];
  /** @type {{ track: number, data: Uint8Array }[]} */
  const blocks = [];
  /** @type {typeof tracks[number] | null} */
  let track = null;
  let at = 0;
  while (at < data.length) {
    // A recording cut short may end inside an element; keep what is complete.
    if (data.length - at < 2) break;
    const id = readVint(data, at, true);
    const size = readVint(data, at + id.length, false);
    const start = at + id.length + size.length;
    if (DESCEND.has(id.value)) {
      if (id.value === ID.TrackEntry) {
        track = { number: 0, codec: '', codecPrivate: null, codecDelay: 0, channels: 0 };
        tracks.push(track);
      }
      at = start;
      continue;
    }
    if (size.unknown) throw new Error('WebM element of unknown size');
    const end = start + size.value;
    if (end > data.length) break;
    const body = data.subarray(start, end);
    switch (id.value) {
      case ID.TrackNumber:
        if (track) track.number = readUint(body);
        break;
      case ID.CodecID:
        if (track) track.codec = new TextDecoder().decode(body);
        break;
      case ID.CodecPrivate:
        if (track) track.codecPrivate = body.slice();
        break;
      case ID.CodecDelay:
        if (track) track.codecDelay = readUint(body);
        break;
      case ID.Channels:
        if (track) track.channels = readUint(body);
        break;
      case ID.SimpleBlock:
      case ID.Block: {
        const number = readVint(body, 0, false);
        const flags = body[number.length + 2];
        if (flags & 0x06) throw new Error('laced WebM blocks are not supported');
        blocks.push({ track: number.value, data: body.slice(number.length + 3) });
        break;
      }
      default:
        break;
    }
    at = end;
  }
  const opus = tracks.find((t) => t.codec === 'A_OPUS');
  if (!opus) throw new Error('the recording has no Opus track');
  let channels = opus.channels || 1;
  let preSkip = Math.round((opus.codecDelay * 48000) / 1e9);
  const head = opus.codecPrivate;
  if (head && head.length >= 19 && new TextDecoder().decode(head.subarray(0, 8)) === 'OpusHead') {
    channels = head[9];
    preSkip = head[10] | (head[11] << 8);
  }
  const packets = blocks.filter((b) => b.track === opus.number).map((b) => b.data);
  return { channels, preSkip, packets };
}
