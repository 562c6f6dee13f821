/**
 * Strict Ed25519 verification, as the Rust side's `verify_strict`: WebCrypto checks the
 * RFC 8032 equation and that `s` is canonical, but accepts public keys and `R` values of
 * small order, for which signatures can be forged or made malleable. The checks it lacks
 * are done here with BigInt arithmetic on public values only (no secret is involved, so
 * variable time is harmless).
 */
import { ed25519VerifyPlain } from './primitives.js';

const P = 2n ** 255n - 19n;
/** Group order of the prime-order subgroup. */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const D = mod(-121665n * inverse(121666n));
const SQRT_M1 = pow(2n, (P - 1n) / 4n);

/**
 * @param {bigint} a
 * @returns {bigint}
 */
function mod(a) {
  const r = a % P;
  return r < 0n ? r + P : r;
}

/**
 * @param {bigint} base
 * @param {bigint} exponent
 * @returns {bigint}
 */
function pow(base, exponent) {
  let result = 1n;
  let b = mod(base);
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

/**
 * @param {bigint} a non-zero
 * @returns {bigint}
 */
function inverse(a) {
  return pow(a, P - 2n);
}

/**
 * @param {Uint8Array} bytes
 * @returns {bigint}
 */
function littleEndian(bytes) {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

/** @typedef {{ x: bigint, y: bigint }} Point */

/**
 * Decompresses a point the way curve25519-dalek does: the top bit is the sign of x, the
 * other 255 bits are y (reduced modulo p), and the encoding is refused only when no x fits.
 * @param {Uint8Array} bytes 32 bytes
 * @returns {Point | null}
 */
function decodePoint(bytes) {
  const sign = bytes[31] >> 7;
  const y = mod(littleEndian(bytes) & (2n ** 255n - 1n));
  const yy = (y * y) % P;
  const x2 = mod((yy - 1n) * inverse(mod(D * yy + 1n)));
  if (x2 === 0n) return { x: 0n, y };
  // p = 5 (mod 8): a candidate root, fixed up by sqrt(-1) when it squares to -x2.
  let x = pow(x2, (P + 3n) / 8n);
  if ((x * x) % P !== x2) x = (x * SQRT_M1) % P;
  if ((x * x) % P !== x2) return null;
  return { x: sign ? mod(-x) : x, y };
}

/**
 * Twisted Edwards addition (a = -1); complete for points on the curve, so no special cases.
 * @param {Point} p
 * @param {Point} q
 * @returns {Point}
 */
function add(p, q) {
  const t = mod(D * p.x * q.x * p.y * q.y);
  return {
    x: mod((p.x * q.y + p.y * q.x) * inverse(mod(1n + t))),
    y: mod((p.y * q.y + p.x * q.x) * inverse(mod(1n - t))),
  };
}

/**
 * Small order means `[8]P` is the identity: the point lies in the torsion subgroup.
 * @param {Point} point
 * @returns {boolean}
 */
function isSmallOrder(point) {
  let q = point;
  for (let i = 0; i < 3; i++) q = add(q, q);
  return q.x === 0n && q.y === 1n;
}

/**
 * Whether 32 bytes are an Ed25519 public key that can be trusted with signatures: a curve
 * point, not of small order.
 * @param {Uint8Array} publicKey
 * @returns {boolean}
 */
export function isValidEd25519PublicKey(publicKey) {
  if (publicKey.length !== 32) return false;
  const point = decodePoint(publicKey);
  return point !== null && !isSmallOrder(point);
}

/**
 * Strict Ed25519 verification: valid, non-weak public key; `R` a point not of small order;
 * `s` below the group order; then the RFC 8032 check by WebCrypto.
 * @param {Uint8Array} publicKey 32 bytes
 * @param {Uint8Array} message
 * @param {Uint8Array} signature 64 bytes
 * @returns {Promise<boolean>}
 */
export async function verifyStrict(publicKey, message, signature) {
  if (signature.length !== 64 || !isValidEd25519PublicKey(publicKey)) return false;
  const r = decodePoint(signature.subarray(0, 32));
  if (r === null || isSmallOrder(r)) return false;
  if (littleEndian(signature.subarray(32)) >= L) return false;
  return ed25519VerifyPlain(publicKey, message, signature);
}
