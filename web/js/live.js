/**
 * Live updates while the app is open: one EventSource on `/api/v1/events` (the session
 * cookie authenticates it) tells the open page what changed in the person's households
 * (a member approved or blocked, a message, a receipt, a toy on- or offline, a new
 * roster), by kind and ids only; the page fetches the rest through the API as usual.
 *
 * The browser reconnects a broken stream by itself; a stream the server refused (signed
 * out, too many tabs) is tried again after `RETRY_MS`. Every (re)opened stream is
 * announced as an `open` change, so that a page refetches what it may have missed.
 */

/** Pause before opening again a stream the server refused or closed for good. */
export const RETRY_MS = 5000;

/** The kinds of change the server sends (crates/pawpost-server/src/events.rs). */
export const KINDS = /** @type {const} */ (['member', 'message', 'receipt', 'toy', 'roster', 'household']);

/**
 * @typedef {{ kind: typeof KINDS[number] | 'open', household?: string, account?: string, message?: string, device?: string }} Change
 */

/** @type {EventSource | null} */
let source = null;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let retry;
/** @type {Set<(change: Change) => void>} */
const listeners = new Set();

/** @param {Change} change */
function tell(change) {
  for (const listener of [...listeners]) {
    try {
      listener(change);
    } catch (e) {
      console.error('a live update listener failed', e);
    }
  }
}

/** Opens the stream (once), for the signed-in person. */
export function startLive() {
  if (source || typeof EventSource === 'undefined') return;
  clearTimeout(retry);
  const es = new EventSource('/api/v1/events');
  source = es;
  es.addEventListener('open', () => tell({ kind: 'open' }));
  for (const kind of KINDS) {
    es.addEventListener(kind, (e) => {
      try {
        tell({ ...JSON.parse(/** @type {MessageEvent} */ (e).data), kind });
      } catch {
        // Not a change this app reads: ignored.
      }
    });
  }
  es.addEventListener('error', () => {
    // CONNECTING: the browser retries by itself. CLOSED: the server refused it.
    if (es.readyState !== EventSource.CLOSED || source !== es) return;
    source = null;
    retry = setTimeout(startLive, RETRY_MS);
  });
}

/** Closes the stream (signed out). */
export function stopLive() {
  clearTimeout(retry);
  source?.close();
  source = null;
}

/** Whether the stream is open now. */
export function liveOpen() {
  return source?.readyState === EventSource.OPEN;
}

/**
 * Calls `listener` with every change (and `open` when the stream (re)opens) until the
 * page changes.
 * @param {{ cleanup: (() => void)[] }} app
 * @param {(change: Change) => void} listener
 */
export function onLive(app, listener) {
  listeners.add(listener);
  app.cleanup.push(() => listeners.delete(listener));
}

/**
 * Like `onLive`, for the changes of one household, several in a row coming as one call
 * (a roster and the member change behind it, say) after the page is done with the last.
 * @param {{ cleanup: (() => void)[] }} app
 * @param {string} householdId
 * @param {(change: Change) => Promise<void> | void} refresh
 */
export function onHouseholdChange(app, householdId, refresh) {
  let running = false;
  /** @type {Change | null} */
  let again = null;
  let stopped = false;
  app.cleanup.push(() => {
    stopped = true;
  });
  /** @param {Change} change */
  const run = async (change) => {
    if (stopped) return;
    if (running) {
      again = change;
      return;
    }
    running = true;
    try {
      await refresh(change);
    } catch (e) {
      console.warn('a live refresh failed', e);
    } finally {
      running = false;
    }
    if (again && !stopped) {
      const next = again;
      again = null;
      run(next);
    }
  };
  onLive(app, (change) => {
    if (change.kind === 'open' || change.household === householdId) run(change);
  });
}
