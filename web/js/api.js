/**
 * The server's HTTP API. Browsers authenticate with the HttpOnly session cookie; every
 * state-changing request echoes the session's CSRF token.
 */

import { errorWords } from './words.js';

/**
 * An error answer: `status`, the server's stable `code`, as `message` the plain words the
 * screen shows for that code (words.js), the server's own sentence as `detail` (for
 * developers, never shown), and for a 429 or 503 the seconds to wait (`Retry-After`),
 * when the server said.
 */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} detail the server's sentence
   * @param {number | null} [retryAfter]
   */
  constructor(status, code, detail, retryAfter = null) {
    super(errorWords(code, status));
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

let csrfToken = '';

/** @param {string} token */
export function setCsrfToken(token) {
  csrfToken = token;
}

/**
 * @param {Response} res
 * @returns {Promise<ApiError>}
 */
async function errorOf(res) {
  let code = `http_${res.status}`;
  let message = `The server answered ${res.status} ${res.statusText}.`;
  try {
    const body = await res.json();
    if (body && typeof body.error === 'string') code = body.error;
    if (body && typeof body.message === 'string') message = body.message;
  } catch {
    // Not JSON: keep the generic message.
  }
  if (res.status === 413) message = `This is too large to send. ${message}`;
  const retry = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
  return new ApiError(res.status, code, message, Number.isFinite(retry) && retry >= 0 ? retry : null);
}

/**
 * @param {string} method
 * @param {string} path
 * @param {any} [body] JSON-encoded unless a Uint8Array
 * @returns {Promise<any>} the parsed JSON answer, or null for 204
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  /** @type {BodyInit | undefined} */
  let payload;
  if (body instanceof Uint8Array) {
    headers['Content-Type'] = 'application/octet-stream';
    // Our own byte arrays, never views of shared memory.
    payload = /** @type {Uint8Array<ArrayBuffer>} */ (body);
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'network', 'Could not reach pawpost. Check your connection and try again.');
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') ?? '';
  if (type.includes('application/json')) return res.json();
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Downloads bytes (a message envelope).
 * @param {string} path
 * @returns {Promise<Uint8Array>}
 */
export async function download(path) {
  let res;
  try {
    res = await fetch(path, { credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, 'network', 'Could not reach pawpost. Check your connection and try again.');
  }
  if (!res.ok) throw await errorOf(res);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Uploads bytes with progress (fetch cannot report upload progress).
 * @param {string} path
 * @param {Uint8Array} bytes
 * @param {(fraction: number) => void} onProgress
 * @returns {Promise<any>}
 */
export function upload(path, bytes, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    if (csrfToken) xhr.setRequestHeader('X-CSRF-Token', csrfToken);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onerror = () =>
      reject(new ApiError(0, 'network', 'Could not reach pawpost. Check your connection and try again.'));
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // keep null
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(body);
        return;
      }
      let message = body?.message ?? `The server answered ${xhr.status}.`;
      if (xhr.status === 413) message = `This message is too large to send. ${message}`;
      reject(new ApiError(xhr.status, body?.error ?? `http_${xhr.status}`, message));
    };
    xhr.send(/** @type {any} */ (bytes));
  });
}
