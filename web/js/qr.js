/**
 * A QR code encoder (ISO/IEC 18004), small enough for the app's own needs: the text is
 * encoded as UTF-8 in byte mode, in the smallest version from 1 to 10 that holds it, at
 * error correction level M unless the caller chooses L, Q or H. Of the eight data masks the
 * one with the lowest penalty (the four rules of the standard) is used.
 *
 * `qrMatrix` gives the modules (true = dark); `qrSvgElement` draws them as an SVG image,
 * black on white with a light quiet zone whatever the page's colours, so that a phone's
 * camera can read it from the screen or from paper.
 */

/** @typedef {'L' | 'M' | 'Q' | 'H'} EcLevel */

/** The largest version made: 57 × 57 modules, up to 213 bytes at level M. */
export const QR_MAX_VERSION = 10;
/** The light border the standard asks for around the symbol, in modules. */
export const QR_QUIET_ZONE = 4;
/** How many pixels a module takes when the caller does not say. */
const DEFAULT_MODULE_SIZE = 4;

/** The mode indicator of byte mode. */
const MODE_BYTE = 0b0100;
/** Bits of the character count in byte mode: versions 1 to 9, then 10 to 26. */
const COUNT_BITS_SMALL = 8;
const COUNT_BITS_LARGE = 16;
/** The first version whose byte-mode count takes COUNT_BITS_LARGE bits. */
const LARGE_COUNT_FROM_VERSION = 10;
/** The two pad codewords that fill the data capacity, alternately. */
const PAD_CODEWORDS = [0xec, 0x11];

/** All codewords (data and error correction) of versions 1 to 10. */
const TOTAL_CODEWORDS = [26, 44, 70, 100, 134, 172, 196, 242, 292, 346];
/**
 * Per level, for versions 1 to 10: [error correction codewords per block, number of blocks].
 * The data codewords are the rest, shared among the blocks, the last ones one longer when
 * they do not divide evenly.
 * @type {Record<EcLevel, [number, number][]>}
 */
const EC_BLOCKS = {
  L: [[7, 1], [10, 1], [15, 1], [20, 1], [26, 1], [18, 2], [20, 2], [24, 2], [30, 2], [18, 4]],
  M: [[10, 1], [16, 1], [26, 1], [18, 2], [24, 2], [16, 4], [18, 4], [22, 4], [22, 5], [26, 5]],
  Q: [[13, 1], [22, 1], [18, 2], [26, 2], [18, 4], [24, 4], [18, 6], [22, 6], [20, 8], [24, 8]],
  H: [[17, 1], [28, 1], [22, 2], [16, 4], [22, 4], [28, 4], [26, 5], [26, 6], [24, 8], [28, 8]],
};
/** The two bits that name each level in the format information. */
const EC_FORMAT_BITS = /** @type {Record<EcLevel, number>} */ ({ L: 0b01, M: 0b00, Q: 0b11, H: 0b10 });
/** Centres of the alignment patterns, rows and columns alike, for versions 1 to 10. */
const ALIGNMENT_CENTRES = [[], [6, 18], [6, 22], [6, 26], [6, 30], [6, 34], [6, 22, 38], [6, 24, 42], [6, 26, 46], [6, 28, 50]];
/** The first version that carries version information. */
const VERSION_INFO_FROM = 7;

/** The BCH (15, 5) generator of the format information, and the mask XORed onto it. */
const FORMAT_GENERATOR = 0b10100110111;
const FORMAT_MASK = 0b101010000010010;
/** The BCH (18, 6) generator of the version information. */
const VERSION_GENERATOR = 0b1111100100101;

/** The penalty weights of the standard's four rules. */
const PENALTY_RUN = 3;
const PENALTY_BLOCK = 3;
const PENALTY_FINDER_LIKE = 40;
const PENALTY_BALANCE = 10;
/** Rule 1 counts runs of one colour from this length on. */
const RUN_MIN = 5;
/** Rule 3's pattern dark-light-dark-dark-dark-light-dark with four light modules on one side, both ways round. */
const FINDER_LIKE = [0b10111010000, 0b00001011101];
const FINDER_LIKE_BITS = 11;

/** GF(256) with the polynomial x⁸ + x⁴ + x³ + x² + 1 of the standard. */
const GF_POLYNOMIAL = 0x11d;
const GF_EXP = new Uint8Array(512);
const GF_LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    GF_EXP[i] = x;
    GF_LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= GF_POLYNOMIAL;
  }
  for (let i = 255; i < 512; i++) GF_EXP[i] = GF_EXP[i - 255];
}

/**
 * @param {number} a
 * @param {number} b
 */
function gfMul(a, b) {
  return a === 0 || b === 0 ? 0 : GF_EXP[GF_LOG[a] + GF_LOG[b]];
}

/**
 * The generator polynomial (x − α⁰)(x − α¹)…(x − α^(degree−1)), highest power first,
 * without its leading 1.
 * @param {number} degree
 */
function rsGenerator(degree) {
  let poly = [1];
  for (let i = 0; i < degree; i++) {
    const next = new Array(poly.length + 1).fill(0);
    for (let j = 0; j < poly.length; j++) {
      next[j] ^= poly[j];
      next[j + 1] ^= gfMul(poly[j], GF_EXP[i]);
    }
    poly = next;
  }
  return poly.slice(1);
}

/**
 * The Reed-Solomon error correction codewords of one block: the remainder of the data
 * (times x^degree) divided by the generator.
 * @param {number[]} data
 * @param {number} degree
 */
function rsRemainder(data, degree) {
  const generator = rsGenerator(degree);
  const rest = new Array(degree).fill(0);
  for (const byte of data) {
    const factor = byte ^ rest[0];
    rest.shift();
    rest.push(0);
    for (let i = 0; i < degree; i++) rest[i] ^= gfMul(generator[i], factor);
  }
  return rest;
}

/**
 * The remainder of `value` (shifted left by the generator's degree) divided by `generator`,
 * over GF(2): the check bits of a BCH code.
 * @param {number} value
 * @param {number} generator
 */
function bchRemainder(value, generator) {
  const degree = 31 - Math.clz32(generator);
  let rest = value << degree;
  for (let bit = 31 - Math.clz32(rest); bit >= degree; bit--) {
    if (rest & (1 << bit)) rest ^= generator << (bit - degree);
  }
  return rest;
}

/**
 * @param {number} version
 * @param {EcLevel} level
 */
function dataCodewords(version, level) {
  const [ec, blocks] = EC_BLOCKS[level][version - 1];
  return TOTAL_CODEWORDS[version - 1] - ec * blocks;
}

/**
 * How many bytes a symbol of this version and level holds in byte mode.
 * @param {number} version
 * @param {EcLevel} [level]
 */
export function qrCapacity(version, level = 'M') {
  const countBits = version >= LARGE_COUNT_FROM_VERSION ? COUNT_BITS_LARGE : COUNT_BITS_SMALL;
  const bytes = Math.floor((dataCodewords(version, level) * 8 - 4 - countBits) / 8);
  return Math.min(bytes, 2 ** countBits - 1);
}

/**
 * The data codewords: mode, count, the bytes, the terminator and the padding.
 * @param {Uint8Array} bytes
 * @param {number} version
 * @param {EcLevel} level
 */
function encodeData(bytes, version, level) {
  const capacity = dataCodewords(version, level);
  /** @type {number[]} */
  const bits = [];
  /**
   * @param {number} value
   * @param {number} length
   */
  const put = (value, length) => {
    for (let i = length - 1; i >= 0; i--) bits.push((value >>> i) & 1);
  };
  put(MODE_BYTE, 4);
  put(bytes.length, version >= LARGE_COUNT_FROM_VERSION ? COUNT_BITS_LARGE : COUNT_BITS_SMALL);
  for (const byte of bytes) put(byte, 8);
  // The terminator: up to four zero bits, as many as fit; then zeros to a whole byte.
  put(0, Math.min(4, capacity * 8 - bits.length));
  put(0, (8 - (bits.length % 8)) % 8);
  /** @type {number[]} */
  const codewords = [];
  for (let i = 0; i < bits.length; i += 8) codewords.push(bits.slice(i, i + 8).reduce((a, b) => (a << 1) | b, 0));
  for (let i = 0; codewords.length < capacity; i++) codewords.push(PAD_CODEWORDS[i % 2]);
  return codewords;
}

/**
 * Splits the data codewords into blocks, adds each block's error correction and
 * interleaves them into the final sequence.
 * @param {number[]} data
 * @param {number} version
 * @param {EcLevel} level
 */
function addErrorCorrection(data, version, level) {
  const [ecLength, blockCount] = EC_BLOCKS[level][version - 1];
  const shortLength = Math.floor(data.length / blockCount);
  const longBlocks = data.length % blockCount;
  /** @type {number[][]} */
  const blocks = [];
  /** @type {number[][]} */
  const ecBlocks = [];
  let at = 0;
  for (let b = 0; b < blockCount; b++) {
    const length = shortLength + (b >= blockCount - longBlocks ? 1 : 0);
    const block = data.slice(at, at + length);
    at += length;
    blocks.push(block);
    ecBlocks.push(rsRemainder(block, ecLength));
  }
  /** @type {number[]} */
  const out = [];
  for (let i = 0; i <= shortLength; i++) {
    for (const block of blocks) if (i < block.length) out.push(block[i]);
  }
  for (let i = 0; i < ecLength; i++) {
    for (const block of ecBlocks) out.push(block[i]);
  }
  return out;
}

/**
 * A symbol being drawn: its modules and which of them belong to function patterns
 * (finders, separators, timing, alignment, format and version information).
 */
class Grid {
  /** @param {number} version */
  constructor(version) {
    this.version = version;
    this.size = 17 + 4 * version;
    /** @type {boolean[][]} */
    this.dark = Array.from({ length: this.size }, () => new Array(this.size).fill(false));
    /** @type {boolean[][]} */
    this.reserved = Array.from({ length: this.size }, () => new Array(this.size).fill(false));
  }

  /**
   * @param {number} row
   * @param {number} col
   * @param {boolean} dark
   */
  setFunction(row, col, dark) {
    this.dark[row][col] = dark;
    this.reserved[row][col] = true;
  }

  drawFunctionPatterns() {
    const size = this.size;
    // Timing patterns: alternate along row 6 and column 6, dark first.
    for (let i = 0; i < size; i++) {
      this.setFunction(6, i, i % 2 === 0);
      this.setFunction(i, 6, i % 2 === 0);
    }
    // Finder patterns with their light separators, in three corners.
    for (const [top, left] of [[0, 0], [0, size - 7], [size - 7, 0]]) {
      for (let dr = -1; dr <= 7; dr++) {
        for (let dc = -1; dc <= 7; dc++) {
          const row = top + dr;
          const col = left + dc;
          if (row < 0 || row >= size || col < 0 || col >= size) continue;
          const ring = Math.max(Math.abs(dr - 3), Math.abs(dc - 3));
          this.setFunction(row, col, ring !== 2 && ring !== 4);
        }
      }
    }
    // Alignment patterns, except where they would cover a finder.
    const centres = ALIGNMENT_CENTRES[this.version - 1];
    const last = centres.length - 1;
    for (let i = 0; i < centres.length; i++) {
      for (let j = 0; j < centres.length; j++) {
        if ((i === 0 && j === 0) || (i === 0 && j === last) || (i === last && j === 0)) continue;
        for (let dr = -2; dr <= 2; dr++) {
          for (let dc = -2; dc <= 2; dc++) {
            this.setFunction(centres[i] + dr, centres[j] + dc, Math.max(Math.abs(dr), Math.abs(dc)) !== 1);
          }
        }
      }
    }
    // Reserve the format information (drawn per mask) and draw the version information.
    this.drawFormat(0, 'M');
    this.drawVersion();
  }

  /**
   * The 15 format bits (level and mask) in both their places, and the dark module.
   * @param {number} mask
   * @param {EcLevel} level
   */
  drawFormat(mask, level) {
    const size = this.size;
    const data = (EC_FORMAT_BITS[level] << 3) | mask;
    const bits = ((data << 10) | bchRemainder(data, FORMAT_GENERATOR)) ^ FORMAT_MASK;
    const bit = (/** @type {number} */ i) => ((bits >>> i) & 1) === 1;
    // Around the top-left finder: down column 8 (skipping the timing row), then left along row 8.
    for (let i = 0; i <= 5; i++) this.setFunction(i, 8, bit(i));
    this.setFunction(7, 8, bit(6));
    this.setFunction(8, 8, bit(7));
    this.setFunction(8, 7, bit(8));
    for (let i = 9; i < 15; i++) this.setFunction(8, 14 - i, bit(i));
    // The copy: along row 8 under the top-right finder, then up column 8 beside the bottom-left one.
    for (let i = 0; i < 8; i++) this.setFunction(8, size - 1 - i, bit(i));
    for (let i = 8; i < 15; i++) this.setFunction(size - 15 + i, 8, bit(i));
    this.setFunction(size - 8, 8, true);
  }

  /** From version 7 on: the 18 version bits, beside the top-right and bottom-left finders. */
  drawVersion() {
    if (this.version < VERSION_INFO_FROM) return;
    const bits = (this.version << 12) | bchRemainder(this.version, VERSION_GENERATOR);
    for (let i = 0; i < 18; i++) {
      const dark = ((bits >>> i) & 1) === 1;
      const near = this.size - 11 + (i % 3);
      const far = Math.floor(i / 3);
      this.setFunction(far, near, dark);
      this.setFunction(near, far, dark);
    }
  }

  /**
   * Places the codewords' bits, most significant first, in the standard's zigzag: pairs of
   * columns from the right, up then down, stepping over the timing column. Modules left over
   * (the remainder bits) stay light.
   * @param {number[]} codewords
   */
  drawCodewords(codewords) {
    const size = this.size;
    const total = codewords.length * 8;
    let index = 0;
    for (let right = size - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5;
      const upward = ((size - 1 - right) >> 1) % 2 === 0;
      for (let step = 0; step < size; step++) {
        const row = upward ? size - 1 - step : step;
        for (const col of [right, right - 1]) {
          if (this.reserved[row][col]) continue;
          if (index < total) this.dark[row][col] = ((codewords[index >>> 3] >>> (7 - (index & 7))) & 1) === 1;
          index++;
        }
      }
    }
  }

  /**
   * Flips the data modules where mask `mask` says so; applying it twice undoes it.
   * @param {number} mask
   */
  applyMask(mask) {
    for (let row = 0; row < this.size; row++) {
      for (let col = 0; col < this.size; col++) {
        if (!this.reserved[row][col] && maskFlips(mask, row, col)) this.dark[row][col] = !this.dark[row][col];
      }
    }
  }
}

/**
 * The eight data masks of the standard.
 * @param {number} mask
 * @param {number} i row
 * @param {number} j column
 */
function maskFlips(mask, i, j) {
  switch (mask) {
    case 0: return (i + j) % 2 === 0;
    case 1: return i % 2 === 0;
    case 2: return j % 3 === 0;
    case 3: return (i + j) % 3 === 0;
    case 4: return (Math.floor(i / 2) + Math.floor(j / 3)) % 2 === 0;
    case 5: return ((i * j) % 2) + ((i * j) % 3) === 0;
    case 6: return (((i * j) % 2) + ((i * j) % 3)) % 2 === 0;
    case 7: return (((i + j) % 2) + ((i * j) % 3)) % 2 === 0;
    default: throw new RangeError(`There is no QR mask ${mask}: masks are 0 to 7.`);
  }
}

/**
 * The standard's penalty of a finished symbol; the mask with the lowest is used.
 * 1. each run of five or more modules of one colour in a row or column: 3, plus 1 per
 *    module beyond five;
 * 2. each 2 × 2 block of one colour (blocks may overlap): 3;
 * 3. each dark-light-dark-dark-dark-light-dark pattern in a row or column with four light
 *    modules of the symbol before or after it (counted once per side): 40;
 * 4. 10 for every full 5 % by which the share of dark modules is away from 50 %.
 * @param {boolean[][]} m
 */
export function qrPenalty(m) {
  const size = m.length;
  let penalty = 0;
  let darkCount = 0;
  for (let a = 0; a < size; a++) {
    // a is the row for the horizontal scan and the column for the vertical one.
    for (const line of [(/** @type {number} */ b) => m[a][b], (/** @type {number} */ b) => m[b][a]]) {
      let run = 0;
      /** @type {boolean | null} */
      let previous = null;
      let window = 0;
      for (let b = 0; b < size; b++) {
        const dark = line(b);
        if (dark === previous) run++;
        else {
          if (run >= RUN_MIN) penalty += PENALTY_RUN + run - RUN_MIN;
          run = 1;
          previous = dark;
        }
        window = ((window << 1) | (dark ? 1 : 0)) & ((1 << FINDER_LIKE_BITS) - 1);
        if (b >= FINDER_LIKE_BITS - 1 && FINDER_LIKE.includes(window)) penalty += PENALTY_FINDER_LIKE;
      }
      if (run >= RUN_MIN) penalty += PENALTY_RUN + run - RUN_MIN;
    }
    for (let b = 0; b < size; b++) {
      if (m[a][b]) darkCount++;
      if (a + 1 < size && b + 1 < size) {
        const c = m[a][b];
        if (m[a][b + 1] === c && m[a + 1][b] === c && m[a + 1][b + 1] === c) penalty += PENALTY_BLOCK;
      }
    }
  }
  const total = size * size;
  // |dark/total − 1/2| in whole steps of 5 %.
  const k = Math.floor(Math.abs(20 * darkCount - 10 * total) / total);
  return penalty + PENALTY_BALANCE * k;
}

/**
 * The modules of the QR code of `text` (UTF-8, byte mode): `result[row][column]`, true for
 * dark, without the quiet zone.
 * @param {string} text
 * @param {{ level?: EcLevel, mask?: number }} [opts] `level`: error correction (L 7 %,
 *   M 15 %, Q 25 %, H 30 % of the codewords may be lost), M by default; `mask`: force one of
 *   the eight masks (0 to 7) instead of choosing the best.
 * @returns {boolean[][]}
 * @throws {RangeError} when the text does not fit a version 10 symbol at that level
 */
export function qrMatrix(text, opts = {}) {
  const level = opts.level ?? 'M';
  if (!(level in EC_BLOCKS)) throw new RangeError(`There is no QR error correction level ${level}: use L, M, Q or H.`);
  if (opts.mask !== undefined && !(Number.isInteger(opts.mask) && opts.mask >= 0 && opts.mask <= 7)) {
    throw new RangeError(`There is no QR mask ${opts.mask}: masks are 0 to 7.`);
  }
  const bytes = new TextEncoder().encode(text);
  let version = 1;
  while (version <= QR_MAX_VERSION && qrCapacity(version, level) < bytes.length) version++;
  if (version > QR_MAX_VERSION) {
    throw new RangeError(
      `This text is ${bytes.length} bytes long in UTF-8, too long for a QR code here: at error correction level ${level} it holds at most ${qrCapacity(QR_MAX_VERSION, level)} bytes. Shorten the text or choose a lower level.`,
    );
  }
  const grid = new Grid(version);
  grid.drawFunctionPatterns();
  grid.drawCodewords(addErrorCorrection(encodeData(bytes, version, level), version, level));

  let mask = opts.mask ?? -1;
  if (mask < 0) {
    let best = Infinity;
    for (let candidate = 0; candidate < 8; candidate++) {
      grid.applyMask(candidate);
      grid.drawFormat(candidate, level);
      const penalty = qrPenalty(grid.dark);
      if (penalty < best) {
        best = penalty;
        mask = candidate;
      }
      grid.applyMask(candidate);
    }
  }
  grid.applyMask(mask);
  grid.drawFormat(mask, level);
  return grid.dark;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * The QR code of `text` as an `<svg>` image: a white square with one black `<path>` of the
 * dark modules, whatever the page's colour scheme, crisp at any size. It is an image to
 * assistive technology, named by `label` (by default "QR code: " and the text).
 * @param {string} text
 * @param {{ moduleSize?: number, quietZone?: number, level?: EcLevel, label?: string }} [opts]
 *   `moduleSize`: pixels per module for its width and height attributes (CSS may resize
 *   it); `quietZone`: the white border in modules, 4 as the standard asks.
 * @returns {SVGSVGElement}
 * @throws {RangeError} as qrMatrix does
 */
export function qrSvgElement(text, opts = {}) {
  const { moduleSize = DEFAULT_MODULE_SIZE, quietZone = QR_QUIET_ZONE, level = 'M', label = `QR code: ${text}` } = opts;
  const matrix = qrMatrix(text, { level });
  const side = matrix.length + 2 * quietZone;
  const svg = /** @type {SVGSVGElement} */ (document.createElementNS(SVG_NS, 'svg'));
  svg.setAttribute('xmlns', SVG_NS);
  svg.setAttribute('viewBox', `0 0 ${side} ${side}`);
  svg.setAttribute('width', String(side * moduleSize));
  svg.setAttribute('height', String(side * moduleSize));
  svg.setAttribute('shape-rendering', 'crispEdges');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('class', 'qr-code');
  svg.dataset.modules = String(matrix.length);
  svg.dataset.quietZone = String(quietZone);

  const background = document.createElementNS(SVG_NS, 'rect');
  background.setAttribute('width', String(side));
  background.setAttribute('height', String(side));
  background.setAttribute('fill', '#fff');
  // Each horizontal run of dark modules is one rectangle of the path.
  let d = '';
  matrix.forEach((row, y) => {
    for (let x = 0; x < row.length; ) {
      if (!row[x]) {
        x++;
        continue;
      }
      let run = 1;
      while (x + run < row.length && row[x + run]) run++;
      d += `M${x + quietZone} ${y + quietZone}h${run}v1h-${run}z`;
      x += run;
    }
  });
  const path = document.createElementNS(SVG_NS, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000');
  svg.append(background, path);
  return svg;
}
