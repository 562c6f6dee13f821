// "Software version N" on the toy's card, in a real Chromium with a real server and the
// simulated toy: a release manager makes a release key (`pawpost release keygen`), the
// operator starts the server with its public half (`--release-public-key`), and a toy whose
// image trusts that key runs version 1, which its parents see. Version 2 is signed
// (`pawpost release sign`) and published to the server's store (`pawpost release publish`);
// the toy is offered it when it next connects, downloads and checks it, "boots" it and
// reports it, and the parents' page shows "Software version 2". The toy speaks toy protocol
// version 3, so the whole update crosses the encrypted channel (docs/UPDATES.md).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';

import { BINARY, expectAccessible, makeVoiceWav, openBrowser, requireBinary, screenshot, startServer, startToy, StoryFamily } from './harness.js';

/** The board the simulated toy's software is built for (`pawpost toy --board`'s default). */
const BOARD = 'pawpost-sim';
/** How many times the family page is opened again while waiting for the toy's report. */
const PAGE_LOADS = 60;

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let parent;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let gran;
/** @type {ReturnType<typeof startToy>} */
let toy;
/** @type {StoryFamily} */
let family;
let work = '';
let releaseKey = '';
let publicKey = '';

/**
 * Runs `pawpost ARGS` to its end.
 * @param {string[]} args
 * @returns {string} what it printed
 */
function pawpost(args) {
  const run = spawnSync(BINARY, args, { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(run.status, 0, `pawpost ${args.join(' ')} failed:\n${run.stdout}${run.stderr}`);
  return run.stdout;
}

/** The toy, started on its state folder (again), trusting the release key. */
function startOurToy() {
  return startToy(server, join(work, 'toy'), ['--channel', '--release-public-key', publicKey]);
}

/**
 * The parents' family page, opened again until the toy's card says `text`.
 * @param {string} text
 */
async function cardSays(text) {
  const page = parent.page;
  for (let load = 0; ; load += 1) {
    await page.goto(`${family.url}/family`);
    const card = page.locator('li.toy');
    await card.waitFor();
    if (await card.getByText(text, { exact: true }).isVisible()) return card;
    const shown = await card.locator('.toy-software').textContent().catch(() => null);
    assert.ok(load < PAGE_LOADS, `the toy's card never said "${text}" (it says ${JSON.stringify(shown)})`);
    await page.waitForTimeout(500);
  }
}

before(async () => {
  requireBinary();
  work = mkdtempSync(join(tmpdir(), 'pawpost-software-version-'));
  releaseKey = join(work, 'release.key');
  const printed = pawpost(['release', 'keygen', '--out', releaseKey]);
  publicKey = /release public key: ([0-9a-f]{64})/.exec(printed)?.[1] ?? '';
  assert.ok(publicKey, `pawpost release keygen printed no public key:\n${printed}`);
  server = await startServer({ args: ['--release-public-key', publicKey] });
  const wav = makeVoiceWav(work, 'Hello Sam, it is grandma.');
  parent = await openBrowser(wav);
  gran = await openBrowser(wav);
  toy = startOurToy();
  family = new StoryFamily(server, {
    parent: { browser: parent, email: 'mum@example.com', name: 'Mum' },
    relative: { browser: gran, email: 'gran@example.com', name: 'Gran' },
    household: 'The Lindqvists',
    child: 'Sam',
  });
});

beforeEach(() => {
  parent.errors.length = 0;
  gran.errors.length = 0;
});

after(async () => {
  toy?.stop();
  await parent?.close();
  await gran?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("the parents see the toy's software version, 1 before a signed update and 2 after it", { timeout: 240000 }, async () => {
  await toy.says(/software: version 1 \(firmware\.txt written\)/);
  await family.ensurePairedToy(toy);
  await cardSays('Software version 1');
  await expectAccessible(parent.page, 'the toy card with its software version');

  // The release manager signs version 2 and the operator publishes it to the server's store.
  const image = join(work, 'v2.bin');
  writeFileSync(image, Buffer.from(Array.from({ length: 3 * 4096 + 123 }, (_, i) => (i * 31 + 7) % 256)));
  const manifest = join(work, 'v2.manifest');
  pawpost(['release', 'sign', '--key', releaseKey, '--board', BOARD, '--version', '2', '--counter', '2', image, '--out', manifest]);
  pawpost(['release', 'publish', '--manifest', manifest, '--image', image, '--release-public-key', publicKey, '--data-dir', join(server.dataDir, 'data')]);
  // Nothing changes before the toy has installed it.
  await cardSays('Software version 1');

  // The toy is offered the release when it next connects.
  const from = toy.output().length;
  toy.tell('quit');
  await toy.says(/toy switched off/, { from });
  toy.stop();
  toy = startOurToy();
  await cardSays('Software version 2');
  const firmware = readFileSync(join(work, 'toy', 'firmware.txt'), 'utf8');
  assert.match(firmware, /^version=2$/m, `the toy runs version 2:\n${firmware}`);
  assert.deepEqual(readFileSync(join(work, 'toy', 'update-slot.bin')), readFileSync(image), 'the toy installed exactly the signed image');
  await expectAccessible(parent.page, 'the toy card after the update');
  await screenshot(parent.page, 'software-version-2');

  // It still works: the toy is online on its new version.
  const status = await toy.status();
  assert.match(status, /connection: up/, `the toy is connected after the update:\n${status}`);
  assert.deepEqual(parent.errors, []);
});
