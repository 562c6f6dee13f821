/** A MediaRecorder WebM recording made into the Ogg Opus file the toy plays. */
import { OggOpusWriter } from './ogg.js';
import { opusFromWebm } from './webm.js';

/** Longest voice message. */
export const MAX_VOICE_MS = 30000;

/**
 * @param {Uint8Array} webm
 * @param {{ maxMs?: number, serial?: number }} [options]
 * @returns {{ ogg: Uint8Array, durationMs: number, packets: number }}
 */
export function webmToOggOpus(webm, options = {}) {
  const maxMs = options.maxMs ?? MAX_VOICE_MS;
  const { channels, preSkip, packets } = opusFromWebm(webm);
  if (packets.length === 0) throw new Error('the recording holds no audio');
  const serial = options.serial ?? crypto.getRandomValues(new Uint32Array(1))[0];
  const writer = new OggOpusWriter(channels, preSkip, serial);
  const maxSamples = (maxMs * 48000) / 1000 + preSkip;
  for (const p of packets) {
    if (writer.samples >= maxSamples) break;
    writer.pushPacket(p);
  }
  return { ogg: writer.finish(0), durationMs: writer.durationMs, packets: writer.packets };
}
