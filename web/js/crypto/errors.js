/**
 * The one error type of this package. `code` is the stable snake_case name shared with the
 * Rust implementation and the test vectors (`truncated`, `bad_signature`, `key_unwrap`, ...),
 * so callers branch on `code`, never on `message`.
 */
export class PawpostCryptoError extends Error {
  /**
   * @param {string} code stable snake_case name
   * @param {string} [message] human-readable detail
   */
  constructor(code, message) {
    super(message ?? code);
    this.name = 'PawpostCryptoError';
    /** @readonly */
    this.code = code;
  }
}

/**
 * @param {string} code
 * @param {string} [message]
 * @returns {never}
 */
export function fail(code, message) {
  throw new PawpostCryptoError(code, message);
}
