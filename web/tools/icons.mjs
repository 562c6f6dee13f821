#!/usr/bin/env node
// Draws the app's PNG icons and favicon.ico from web/icons/icon.svg with the same Chromium
// the browser stories use (playwright-core, /usr/bin/chromium): nothing is downloaded.
// Run it after changing the SVG, and commit what it writes:
//
//   node web/tools/icons.mjs
//
// writes web/icons/icon-192.png, web/icons/icon-512.png and web/icons/favicon.ico (a
// 32×32 and a 48×48 PNG in an ICO container).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const ICONS = fileURLToPath(new URL('../icons/', import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** The sizes the manifest lists. */
const PNG_SIZES = [192, 512];
/** The sizes inside favicon.ico. */
const ICO_SIZES = [32, 48];

const svg = readFileSync(`${ICONS}icon.svg`);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage({ deviceScaleFactor: 1 });
  /**
   * @param {number} size
   * @returns {Promise<Buffer>} the SVG drawn as a size×size PNG
   */
  const draw = async (size) => {
    await page.setViewportSize({ width: size, height: size });
    const src = `data:image/svg+xml;base64,${svg.toString('base64')}`;
    await page.setContent(`<style>html,body{margin:0}img{display:block}</style><img width="${size}" height="${size}" src="${src}">`);
    await page.locator('img').evaluate((img) => /** @type {HTMLImageElement} */ (img).decode());
    return page.screenshot({ clip: { x: 0, y: 0, width: size, height: size }, omitBackground: true });
  };
  for (const size of PNG_SIZES) writeFileSync(`${ICONS}icon-${size}.png`, await draw(size));
  const images = [];
  for (const size of ICO_SIZES) images.push({ size, png: await draw(size) });
  writeFileSync(`${ICONS}favicon.ico`, ico(images));
} finally {
  await browser.close();
}

/**
 * An ICO file holding PNG images (understood by every browser that shows favicons).
 * @param {{ size: number, png: Buffer }[]} images
 * @returns {Buffer}
 */
function ico(images) {
  const header = Buffer.alloc(6);
  header.writeUInt16LE(0, 0); // reserved
  header.writeUInt16LE(1, 2); // 1: icon
  header.writeUInt16LE(images.length, 4);
  let offset = 6 + 16 * images.length;
  const entries = images.map(({ size, png }) => {
    const entry = Buffer.alloc(16);
    entry.writeUInt8(size >= 256 ? 0 : size, 0); // width (0 means 256)
    entry.writeUInt8(size >= 256 ? 0 : size, 1); // height
    entry.writeUInt8(0, 2); // no palette
    entry.writeUInt8(0, 3); // reserved
    entry.writeUInt16LE(1, 4); // colour planes
    entry.writeUInt16LE(32, 6); // bits per pixel
    entry.writeUInt32LE(png.length, 8);
    entry.writeUInt32LE(offset, 12);
    offset += png.length;
    return entry;
  });
  return Buffer.concat([header, ...entries, ...images.map((i) => i.png)]);
}
