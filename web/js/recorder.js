/**
 * The voice recorder: microphone through MediaRecorder (Opus), a level meter and a timer,
 * a 30-second limit, a preview, re-record; the result is remuxed into Ogg Opus.
 */
import { readOggOpus, OggOpusWriter } from './media/ogg.js';
import { MAX_VOICE_MS, webmToOggOpus } from './media/remux.js';
import { formatDuration, h } from './util.js';
import { t } from './i18n.js';

/**
 * @param {Uint8Array} bytes
 * @param {string} mime
 * @returns {{ ogg: Uint8Array, durationMs: number }}
 */
function toOggOpus(bytes, mime) {
  if (mime.startsWith('audio/ogg')) {
    // Browsers that record Ogg directly: rewrite it so the toy gets our framing.
    const src = readOggOpus(bytes);
    const w = new OggOpusWriter(src.channels, src.preSkip, crypto.getRandomValues(new Uint32Array(1))[0]);
    for (const p of src.packets) if (w.durationMs < MAX_VOICE_MS) w.pushPacket(p);
    return { ogg: w.finish(0), durationMs: w.durationMs };
  }
  return webmToOggOpus(bytes);
}

function pickMime() {
  for (const t of ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus']) {
    if (typeof MediaRecorder !== 'undefined' && MediaRecorder.isTypeSupported(t)) return t;
  }
  return '';
}

/**
 * @param {{ sendLabel: string, onSend: (rec: { ogg: Uint8Array, durationMs: number },
 *   progress: (f: number) => void) => Promise<void> }} options
 * @returns {HTMLElement}
 */
export function recorderPanel(options) {
  const status = h('p', { class: 'rec-status', role: 'status', 'aria-live': 'polite' });
  const timer = h('span', { class: 'rec-timer', 'aria-label': t('Recording time'), text: `0:00 / ${formatDuration(MAX_VOICE_MS)}` });
  const meter = /** @type {HTMLMeterElement} */ (h('meter', { class: 'rec-meter', min: '0', max: '1', value: '0', 'aria-label': t('Microphone level') }));
  const recordBtn = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'primary rec-button', text: t('Record') }));
  const preview = h('div', { class: 'rec-preview' });
  const sendBtn = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'primary', text: options.sendLabel, hidden: true }));
  const rerecordBtn = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', text: t('Re-record'), hidden: true }));
  const progress = /** @type {HTMLProgressElement} */ (h('progress', { max: '1', value: '0', hidden: true, 'aria-label': t('Sending') }));
  const error = h('p', { class: 'error', role: 'alert' });

  /** @type {{ ogg: Uint8Array, durationMs: number } | null} */
  let result = null;
  /** @type {MediaRecorder | null} */
  let recorder = null;
  /** @type {MediaStream | null} */
  let stream = null;
  /** @type {AudioContext | null} */
  let audioCtx = null;
  let startedAt = 0;
  let tick = 0;
  /** @type {string | null} */
  let previewUrl = null;

  function resetPreview() {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    preview.replaceChildren();
    result = null;
    sendBtn.hidden = true;
    rerecordBtn.hidden = true;
    progress.hidden = true;
  }

  function stopInputs() {
    cancelAnimationFrame(tick);
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    audioCtx?.close().catch(() => {});
    audioCtx = null;
    meter.value = 0;
  }

  async function start() {
    error.textContent = '';
    resetPreview();
    const mime = pickMime();
    if (!mime) {
      error.textContent = t('This browser cannot record Opus audio. Try a recent Chrome, Edge or Firefox.');
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      error.textContent = t('pawpost could not use the microphone. Allow microphone access for this site and try again.');
      return;
    }
    audioCtx = new AudioContext();
    const analyser = audioCtx.createAnalyser();
    analyser.fftSize = 1024;
    audioCtx.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    /** @type {Blob[]} */
    const chunks = [];
    recorder = new MediaRecorder(stream, { mimeType: mime, audioBitsPerSecond: 32000 });
    recorder.ondataavailable = (e) => {
      if (e.data.size > 0) chunks.push(e.data);
    };
    recorder.onstop = async () => {
      stopInputs();
      recordBtn.textContent = t('Record');
      recordBtn.setAttribute('aria-pressed', 'false');
      try {
        const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
        result = toOggOpus(bytes, mime);
        previewUrl = URL.createObjectURL(new Blob([/** @type {BlobPart} */ (result.ogg)], { type: 'audio/ogg' }));
        preview.replaceChildren(
          h('audio', { controls: true, src: previewUrl, 'aria-label': t('Your recording') }),
        );
        status.textContent = t('Recorded {value}. Listen, then send or record again.', { value: formatDuration(result.durationMs) });
        timer.textContent = `${formatDuration(result.durationMs)} / ${formatDuration(MAX_VOICE_MS)}`;
        sendBtn.hidden = false;
        rerecordBtn.hidden = false;
        sendBtn.disabled = false;
        panel.dataset.recorded = String(result.durationMs);
      } catch (e) {
        // The reason is the audio format's, not the person's: it goes to the console only.
        console.warn('recording not prepared', e);
        error.textContent = t('The recording could not be prepared. Record it again; if it keeps happening, try another browser.');
      }
    };
    recorder.start(250);
    startedAt = performance.now();
    recordBtn.textContent = t('Stop');
    recordBtn.setAttribute('aria-pressed', 'true');
    status.textContent = t('Recording… press Stop when you are done (30 seconds at most).');
    const loop = () => {
      const elapsed = performance.now() - startedAt;
      timer.textContent = `${formatDuration(Math.min(elapsed, MAX_VOICE_MS))} / ${formatDuration(MAX_VOICE_MS)}`;
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      meter.value = Math.min(1, Math.sqrt(sum / samples.length) * 4);
      if (elapsed >= MAX_VOICE_MS) {
        stop();
        return;
      }
      tick = requestAnimationFrame(loop);
    };
    tick = requestAnimationFrame(loop);
  }

  function stop() {
    cancelAnimationFrame(tick);
    if (recorder && recorder.state !== 'inactive') recorder.stop();
    recorder = null;
  }

  recordBtn.addEventListener('click', () => {
    if (recorder) stop();
    else start();
  });
  rerecordBtn.addEventListener('click', () => {
    resetPreview();
    status.textContent = '';
    start();
  });
  sendBtn.addEventListener('click', async () => {
    if (!result) return;
    sendBtn.disabled = true;
    rerecordBtn.disabled = true;
    error.textContent = '';
    progress.hidden = false;
    progress.value = 0;
    status.textContent = t('Encrypting and sending…');
    try {
      await options.onSend(result, (f) => {
        progress.value = f;
      });
      status.textContent = 'Sent.';
      resetPreview();
      delete panel.dataset.recorded;
    } catch (e) {
      error.textContent = t('Not sent: {value}', { value: e instanceof Error ? e.message : String(e) });
      status.textContent = '';
      sendBtn.disabled = false;
      progress.hidden = true;
    } finally {
      rerecordBtn.disabled = false;
    }
  });

  const panel = h(
    'section',
    { class: 'recorder', 'aria-labelledby': 'rec-title' },
    h('h2', { id: 'rec-title', text: t('Record a message') }),
    h('div', { class: 'rec-controls' }, recordBtn, timer, meter),
    status,
    preview,
    h('div', { class: 'row' }, sendBtn, rerecordBtn),
    progress,
    error,
  );
  recordBtn.setAttribute('aria-pressed', 'false');
  return panel;
}
