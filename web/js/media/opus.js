/**
 * Opus packet framing (RFC 6716 §3.1-3.2): how long a packet plays, and whether its
 * framing is valid, without decoding it. The same rules as the server's validator.
 */

const MAX_FRAME_BYTES = 1275;
const MAX_PACKET_SAMPLES = 5760;

/**
 * Frame duration in 48 kHz samples for a TOC configuration number.
 * @param {number} config 0..31
 * @returns {number}
 */
export function configFrameSamples(config) {
  if (config <= 11) return [480, 960, 1920, 2880][config % 4];
  if (config <= 15) return [480, 960][config % 2];
  return [120, 240, 480, 960][config % 4];
}

/**
 * @param {Uint8Array} data
 * @param {number} at
 * @returns {[number, number]} frame length and bytes used
 */
function frameLength(data, at) {
  if (at >= data.length) throw new Error('missing frame length');
  const b0 = data[at];
  if (b0 < 252) return [b0, 1];
  if (at + 1 >= data.length) throw new Error('missing frame length');
  return [data[at + 1] * 4 + b0, 2];
}

/** @param {number} len */
function checkFrame(len) {
  if (len > MAX_FRAME_BYTES) throw new Error('Opus frame too long');
}

/**
 * Checks a packet's framing and returns its duration in 48 kHz samples.
 * @param {Uint8Array} packet
 * @returns {number}
 */
export function packetSamples(packet) {
  if (packet.length === 0) throw new Error('empty Opus packet');
  const toc = packet[0];
  const frameSamples = configFrameSamples(toc >> 3);
  const payloadLen = packet.length - 1;
  let frames;
  switch (toc & 3) {
    case 0:
      checkFrame(payloadLen);
      frames = 1;
      break;
    case 1:
      if (payloadLen % 2 !== 0) throw new Error('code 1 packet of odd length');
      checkFrame(payloadLen / 2);
      frames = 2;
      break;
    case 2: {
      const [first, used] = frameLength(packet, 1);
      const rest = payloadLen - used;
      if (first > rest) throw new Error('frame length overruns the packet');
      checkFrame(rest - first);
      frames = 2;
      break;
    }
    default:
      frames = code3Frames(packet, frameSamples);
  }
  return frames * frameSamples;
}

/**
 * @param {Uint8Array} packet
 * @param {number} frameSamples
 * @returns {number}
 */
function code3Frames(packet, frameSamples) {
  if (packet.length < 2) throw new Error('missing frame count');
  const countByte = packet[1];
  const vbr = (countByte & 0x80) !== 0;
  const padded = (countByte & 0x40) !== 0;
  const frames = countByte & 0x3f;
  if (frames === 0) throw new Error('zero frames');
  if (frames * frameSamples > MAX_PACKET_SAMPLES) throw new Error('packet longer than 120 ms');
  let at = 2;
  let end = packet.length;
  if (padded) {
    let padding = 0;
    for (;;) {
      if (at >= end) throw new Error('padding overruns the packet');
      const b = packet[at++];
      if (b === 255) padding += 254;
      else {
        padding += b;
        break;
      }
    }
    if (end - at < padding) throw new Error('padding overruns the packet');
    end -= padding;
  }
  if (vbr) {
    let total = 0;
    for (let i = 1; i < frames; i++) {
      const [len, used] = frameLength(packet.subarray(0, end), at);
      at += used;
      total += len;
      if (total > end - at) throw new Error('frame length overruns the packet');
    }
    checkFrame(end - at - total);
  } else {
    if ((end - at) % frames !== 0) throw new Error('CBR frames of unequal length');
    checkFrame((end - at) / frames);
  }
  return frames;
}
