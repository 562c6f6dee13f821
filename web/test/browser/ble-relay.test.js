// "Connect the toy through this phone" in a real Chromium, a real server and the simulated
// toy behind its Bluetooth link (`pawpost toy --serial-listen --channel`, the firmware's
// link: the packets of docs/FIRMWARE.md), speaking toy protocol version 3: every frame
// inside the encrypted channel, which the phone carries to /api/v1/toy/channel without
// being able to read it. The toy's radio is Chromium's own Web Bluetooth emulation
// (the DevTools Protocol's BluetoothEmulation domain: a simulated adapter and a peripheral
// with the pawpost GATT service), bridged in this process to the toy's link socket. The
// parent's phone finds the toy, relays for it, the parent pairs it from a laptop, the
// grandparent's message reaches the toy and plays, and the child's answer comes back and
// the grandparent opens it. Then the toy goes out of reach and the phone connects again.
//
// One gap in this Chromium's emulation (BluetoothEmulation in Chromium 156): the simulated
// peripheral cannot send a notification (there is no command for a value change from the
// peripheral side; only answers to reads, writes and subscriptions). The toy's fragments
// therefore reach the page as answers to reads of the same characteristics, which this
// test asks the page's characteristic for (`readValue()`): Chromium delivers the answer
// through the same `characteristicvaluechanged` event a notification raises, so the relay
// takes them exactly as it takes notifications, and every byte still crosses the emulated
// GATT link. Everything else (the device chooser, connection, discovery, subscriptions,
// writes without response and with) is the emulation's own.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';

import { chromium } from 'playwright-core';

import { CONTROL_UUID, FROM_TOY_UUID, MAX_RECORD_LEN, SERVICE_UUID, TO_TOY_UUID } from '../../js/ble-relay.js';
import { Reassembler } from '../../js/ble-frames.js';
import { CHROMIUM, expectAccessible, makeVoiceWav, openBrowser, REPO, screenshot, startServer, startToy, StoryFamily } from './harness.js';

const REPLY = join(REPO, 'crates/pawpost-media/tests/fixtures/hello-mono-20ms.ogg');
/** The Client Characteristic Configuration descriptor, which notifications need. */
const CCCD_UUID = '00002902-0000-1000-8000-00805f9b34fb';
/** The emulated toy's Bluetooth address. */
const TOY_ADDRESS = '0A:70:61:77:70:6F';
/** The link's packet kinds (docs/FIRMWARE.md, "The link"). */
const FRAGMENT = 0x01;
const SERVER_UP = 0x02;
const SERVER_DOWN = 0x03;
const RECONNECT = 0x04;
/** The first byte of every channel message (toy protocol version 3); a version 2 frame starts with 1. */
const CHANNEL_VERSION = 3;
/** The kind of a channel message that carries one frame (a record). */
const KIND_RECORD = 0x20;

/**
 * What crates/pawpost-channel says about its messages: the sizes a record is padded to,
 * and the bytes around them (header and tag).
 */
function channelSizes() {
  const source = readFileSync(join(REPO, 'crates/pawpost-channel/src/lib.rs'), 'utf8');
  const constant = (/** @type {string} */ name) => {
    const m = new RegExp(`pub const ${name}: usize = (\\d+);`).exec(source);
    assert.ok(m, `crates/pawpost-channel/src/lib.rs has no ${name}`);
    return Number(m[1]);
  };
  const sizes = /pub const RECORD_SIZES: \[usize; \d+\] = \[([^\]]+)\]/.exec(source);
  assert.ok(sizes, 'crates/pawpost-channel/src/lib.rs has no RECORD_SIZES');
  const around = constant('MESSAGE_HEADER_LEN') + constant('TAG_LEN');
  const records = sizes[1].split(',').map((n) => Number(n.trim().replaceAll('_', '')) + around);
  return { records, max: Math.max(...records) };
}

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let laptop;
/** @type {Awaited<ReturnType<typeof openBrowser>>} */
let gran;
/** @type {Awaited<ReturnType<typeof openPhone>>} */
let phone;
/** @type {ReturnType<typeof startToy>} */
let toy;
/** @type {ToyRadio} */
let radio;
/** @type {StoryFamily} */
let family;
let work = '';

/**
 * The parent's phone: Chromium with Web Bluetooth (behind a flag on Linux), at a phone's
 * size, launched here rather than as a persistent profile because the BluetoothEmulation
 * domain lives on the browser's own DevTools session.
 */
async function openPhone() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--enable-experimental-web-platform-features'],
    timeout: 30000,
  });
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  await context.route(/^(?!(http|ws):\/\/127\.0\.0\.1[:/]).*/, (route) => {
    errors.push(`request outside 127.0.0.1: ${route.request().url()}`);
    return route.abort();
  });
  // Keeps the page's characteristics where the radio below can ask for a read (the
  // stand-in for a notification; see the top of this file). The app itself is unchanged.
  await page.addInitScript(() => {
    const found = /** @type {Record<string, any>} */ ({});
    /** @type {any} */ (window).pawpostTestCharacteristics = found;
    const proto = /** @type {any} */ (window).BluetoothRemoteGATTService?.prototype;
    if (!proto) return;
    const get = proto.getCharacteristic;
    proto.getCharacteristic = async function (/** @type {string} */ uuid) {
      const characteristic = await get.call(this, uuid);
      found[uuid] = characteristic;
      return characteristic;
    };
  });
  return {
    browser,
    context,
    page,
    errors,
    async close() {
      await browser.close().catch(() => {});
    },
  };
}

/**
 * The toy's radio: a peripheral in Chromium's Bluetooth emulation with the pawpost GATT
 * service, whose characteristics carry the packets of the toy's link socket.
 */
class ToyRadio {
  /**
   * @param {Awaited<ReturnType<typeof openPhone>>} phone
   * @param {string} link the toy's link address, HOST:PORT
   */
  constructor(phone, link) {
    this.phone = phone;
    this.link = link;
    /** @type {Record<string, string>} characteristic id → UUID */
    this.uuids = {};
    /** @type {Record<string, string>} UUID → the base64 answer to the page's next read */
    this.nextRead = {};
    /** What the phone told the toy about its server connection, in order. */
    /** @type {string[]} */
    this.control = [];
    this.fragmentsToToy = 0;
    this.fragmentsFromToy = 0;
    /**
     * What a neighbour listening on the radio reassembles from the fragments of each
     * server connection, both ways: the messages the phone relays.
     * @type {Uint8Array[]}
     */
    this.messages = [];
    /** @type {Reassembler | null} */
    this.toToyMessages = null;
    /** @type {Reassembler | null} */
    this.fromToyMessages = null;
    this.toPage = Promise.resolve();
    /** @type {net.Socket | null} */
    this.socket = null;
    this.pending = Buffer.alloc(0);
  }

  async start() {
    const cdp = await this.phone.browser.newBrowserCDPSession();
    this.cdp = cdp;
    await cdp.send('BluetoothEmulation.enable', { state: 'powered-on', leSupported: true });
    await cdp.send('BluetoothEmulation.simulatePreconnectedPeripheral', { address: TOY_ADDRESS, name: 'pawpost toy', manufacturerData: [], knownServiceUuids: [SERVICE_UUID] });
    await this.#addService();
    cdp.on('BluetoothEmulation.gattOperationReceived', (e) => {
      cdp.send('BluetoothEmulation.simulateGATTOperationResponse', { address: TOY_ADDRESS, type: e.type, code: 0 }).catch(() => {});
    });
    cdp.on('BluetoothEmulation.descriptorOperationReceived', (e) => {
      cdp.send('BluetoothEmulation.simulateDescriptorOperationResponse', { descriptorId: e.descriptorId, type: e.type, code: 0 }).catch(() => {});
    });
    cdp.on('BluetoothEmulation.characteristicOperationReceived', (e) => this.#operation(e));
  }

  /** The pawpost service, as the toy's radio offers it. */
  async #addService() {
    const cdp = /** @type {import('playwright-core').CDPSession} */ (this.cdp);
    const { serviceId } = await cdp.send('BluetoothEmulation.addService', { address: TOY_ADDRESS, serviceUuid: SERVICE_UUID });
    /**
     * @param {string} uuid
     * @param {Record<string, boolean>} properties
     */
    const characteristic = async (uuid, properties) => {
      const { characteristicId } = await cdp.send('BluetoothEmulation.addCharacteristic', { serviceId, characteristicUuid: uuid, properties });
      this.uuids[characteristicId] = uuid;
      if (properties.notify) await cdp.send('BluetoothEmulation.addDescriptor', { characteristicId, descriptorUuid: CCCD_UUID });
    };
    await characteristic(TO_TOY_UUID, { writeWithoutResponse: true });
    await characteristic(FROM_TOY_UUID, { notify: true, read: true });
    await characteristic(CONTROL_UUID, { write: true, notify: true, read: true });
  }

  /**
   * Picks the toy in the phone's device list when the page asks for it. The list belongs
   * to the page's document, so this follows the page's last navigation.
   */
  async pickToyInDeviceList() {
    const page = await this.phone.context.newCDPSession(this.phone.page);
    await page.send('DeviceAccess.enable');
    const chosen = new Set();
    page.on('DeviceAccess.deviceRequestPrompted', (e) => {
      const found = e.devices.find((d) => d.id.toUpperCase() === TOY_ADDRESS);
      if (!found) {
        // The list is open and the toy advertises its service.
        this.cdp?.send('BluetoothEmulation.simulateAdvertisement', { entry: { deviceAddress: TOY_ADDRESS, rssi: -50, scanRecord: { name: 'pawpost toy', uuids: [SERVICE_UUID] } } }).catch(() => {});
        return;
      }
      if (chosen.has(e.id)) return;
      chosen.add(e.id);
      page.send('DeviceAccess.selectPrompt', { id: e.id, deviceId: found.id }).catch(() => {});
    });
  }

  /**
   * One GATT operation of the page on a characteristic.
   * @param {{ characteristicId: string, type: string, data?: string, writeType?: string }} e
   */
  #operation(e) {
    const uuid = this.uuids[e.characteristicId];
    /** @type {{ characteristicId: string, type: any, code: number, data?: string }} */
    const answer = { characteristicId: e.characteristicId, type: e.type, code: 0 };
    if (e.type === 'write') {
      const data = Buffer.from(e.data ?? '', 'base64');
      if (uuid === TO_TOY_UUID) {
        assert.equal(e.writeType, 'write-without-response', 'fragments go without response');
        this.fragmentsToToy += 1;
        this.#overhear(this.toToyMessages, data);
        this.#toToy(FRAGMENT, data);
      } else if (uuid === CONTROL_UUID && data[0] === SERVER_UP && data.length === 3) {
        this.control.push(`server up ${data.readUInt16LE(1)}`);
        // Each server connection numbers its fragments from 0 again.
        this.toToyMessages = new Reassembler(data.readUInt16LE(1));
        this.fromToyMessages = new Reassembler(data.readUInt16LE(1));
        this.#toToy(SERVER_UP, data.subarray(1));
      } else if (uuid === CONTROL_UUID && data[0] === SERVER_DOWN && data.length === 1) {
        this.control.push('server down');
        this.#toToy(SERVER_DOWN, Buffer.alloc(0));
      } else {
        this.control.push(`unexpected write to ${uuid}: ${data.toString('hex')}`);
      }
    } else if (e.type === 'read') {
      answer.data = this.nextRead[uuid] ?? '';
      delete this.nextRead[uuid];
    }
    this.cdp?.send('BluetoothEmulation.simulateCharacteristicOperationResponse', answer).catch(() => {});
  }

  /**
   * Reassembles what crosses the radio, as a neighbour could.
   * @param {Reassembler | null} reassembler
   * @param {Uint8Array} fragment
   */
  #overhear(reassembler, fragment) {
    try {
      const whole = reassembler?.push(new Uint8Array(fragment));
      if (whole) this.messages.push(whole.data);
    } catch {
      // A fragment of a connection that ended: the relay drops it too.
    }
  }

  /**
   * @param {number} kind
   * @param {Buffer} payload
   */
  #toToy(kind, payload) {
    this.socket?.write(Buffer.concat([Buffer.from([kind, payload.length]), payload]));
  }

  /** Opens the toy's link socket and carries what the toy sends to the page. */
  connectLink() {
    const [host, port] = this.link.split(':');
    this.socket = net.connect(Number(port), host);
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 2 && this.pending.length >= 2 + this.pending[1]) {
        const kind = this.pending[0];
        const payload = this.pending.subarray(2, 2 + this.pending[1]);
        this.pending = this.pending.subarray(2 + this.pending[1]);
        if (kind === FRAGMENT) {
          this.fragmentsFromToy += 1;
          this.#overhear(this.fromToyMessages, payload);
          this.#toPage(FROM_TOY_UUID, payload);
        } else if (kind === RECONNECT) {
          this.#toPage(CONTROL_UUID, Buffer.concat([Buffer.from([RECONNECT]), payload]));
        }
      }
    });
    return new Promise((resolve, reject) => {
      this.socket?.once('connect', resolve);
      this.socket?.once('error', reject);
    });
  }

  /**
   * Hands the page one value from the toy, in order: the stand-in for a notification.
   * @param {string} uuid
   * @param {Buffer} value
   */
  #toPage(uuid, value) {
    const data = Buffer.from(value).toString('base64');
    this.toPage = this.toPage.then(async () => {
      this.nextRead[uuid] = data;
      await this.phone.page.evaluate(async (u) => {
        const characteristic = /** @type {any} */ (window).pawpostTestCharacteristics[u];
        if (characteristic?.service.device.gatt.connected) await characteristic.readValue().catch(() => {});
      }, uuid).catch(() => {});
    });
  }

  /**
   * The toy walks out of reach: the emulated link drops. The toy's own Bluetooth stack
   * sees the connection go, which ends its server connection ("server down").
   */
  async outOfReach() {
    await this.cdp?.send('BluetoothEmulation.simulateGATTDisconnection', { address: TOY_ADDRESS });
    this.#toToy(SERVER_DOWN, Buffer.alloc(0));
  }

  /** The toy is near again: its radio offers the pawpost service again. */
  async backInReach() {
    await this.#addService();
  }
}

/**
 * Every message the phone carried, both ways, is one of the channel's: version 3, and a
 * record is one of four padded sizes, so that the radio shows no frame type, id or length.
 * @param {Uint8Array[]} messages
 */
function onlyChannelMessages(messages) {
  const { records } = channelSizes();
  assert.ok(messages.length > 0, 'the radio carried messages');
  for (const m of messages) {
    assert.equal(m[0], CHANNEL_VERSION, `a message in the clear crossed the radio: ${Buffer.from(m.subarray(0, 8)).toString('hex')}…`);
    if (m[1] === KIND_RECORD) assert.ok(records.includes(m.length), `a record of ${m.length} bytes is not padded to one of ${records.join(', ')}`);
  }
}

before(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'pawpost-ble-relay-'));
  const wav = makeVoiceWav(work, 'Hello Ada, this is grandpa. Sleep well.');
  laptop = await openBrowser(wav);
  gran = await openBrowser(wav);
  phone = await openPhone();
  toy = startToy(server, join(work, 'toy'), ['--serial-listen', '127.0.0.1:0', '--channel']);
  const [, link] = await toy.says(/link: (\S+)/);
  radio = new ToyRadio(phone, link);
  await radio.start();
  await radio.connectLink();
  family = new StoryFamily(server, {
    parent: { browser: laptop, email: 'mum@example.com', name: 'Mum' },
    relative: { browser: gran, email: 'grandpa@example.com', name: 'Grandpa Joe' },
    household: 'The Okafors',
    child: 'Ada',
  });
});

beforeEach(() => {
  laptop.errors.length = 0;
  gran.errors.length = 0;
  phone.errors.length = 0;
});

after(async () => {
  radio?.socket?.destroy();
  toy?.stop();
  await phone?.close();
  await laptop?.close();
  await gran?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("the phone's largest message is the channel's largest", () => {
  assert.equal(MAX_RECORD_LEN, channelSizes().max, 'MAX_RECORD_LEN in web/js/ble-relay.js follows crates/pawpost-channel');
});

test('a browser without Web Bluetooth says so in plain words and shows no button', { timeout: 90000 }, async () => {
  await family.ensureFamily();
  const page = laptop.page;
  await page.goto(`${family.url}/family`);
  const section = page.locator('section.phone-relay');
  await section.getByRole('heading', { name: 'Connect the toy through this phone' }).waitFor();
  await section.getByText('This browser cannot use Bluetooth.').waitFor();
  assert.equal(await section.getByRole('button').count(), 0, 'no button that cannot work');
  assert.deepEqual(laptop.errors, []);
});

test("the parent's phone finds the toy and relays for it, and the toy is paired through it", { timeout: 150000 }, async () => {
  await family.ensureFamily();
  // Mum signs in on her phone too and opens the family page next to the toy.
  await family.ensureSignedIn({ browser: phone, email: 'mum@example.com', name: 'Mum' });
  const page = phone.page;
  await page.goto(`${family.url}/family`);
  const section = page.locator('section.phone-relay');
  await section.getByRole('heading', { name: 'Connect the toy through this phone' }).waitFor();
  await expectAccessible(page, 'the phone relay, before connecting');
  const from = toy.output().length;
  await radio.pickToyInDeviceList();
  await section.getByRole('button', { name: 'Connect the toy' }).click();
  await section.getByRole('status').filter({ hasText: 'Relaying for your toy.' }).waitFor({ timeout: 30000 });
  await toy.says(/^connected$/m, { from, timeoutMs: 30000 });
  assert.deepEqual(radio.control.slice(0, 1), ['server up 23'], 'the phone tells the toy its server connection is up, at MTU 23');
  await expectAccessible(page, 'the phone relay, relaying');
  await screenshot(page, 'ble-relay-relaying');

  // Mum pairs the toy from her laptop; every frame of it crosses the phone.
  await family.ensurePairedToy(toy);
  assert.ok(radio.fragmentsFromToy > 0 && radio.fragmentsToToy > 0, 'the frames went through the emulated radio');
  onlyChannelMessages(radio.messages);
  // After pairing the toy asks for a new server connection; the phone opens it.
  assert.ok(radio.control.includes('server down'), `the phone closed the pairing connection: ${radio.control.join(', ')}`);
  assert.deepEqual(phone.errors, []);
  assert.deepEqual(laptop.errors, []);
});

test("the grandparent's message reaches the toy through the phone and plays, and the child's answer comes back", { timeout: 240000 }, async () => {
  await family.ensurePairedToy(toy);
  const g = gran.page;
  await g.goto(family.url);
  await g.getByRole('heading', { name: 'Messages with Ada' }).waitFor();
  await g.getByRole('button', { name: 'Record' }).click();
  await g.waitForTimeout(1500);
  await g.getByRole('button', { name: 'Stop' }).click();
  await g.locator('.recorder[data-recorded]').waitFor();
  const before = radio.fragmentsToToy;
  await g.getByRole('button', { name: 'Send to Ada' }).click();
  await g.getByRole('status').filter({ hasText: 'Sent.' }).waitFor();
  const mine = g.locator('li.message.mine').first();
  await mine.locator('[data-state=delivered], [data-state=heard]').waitFor({ timeout: 120000 });
  assert.ok(radio.fragmentsToToy - before > 100, `the message crossed in 20-byte fragments (${radio.fragmentsToToy - before})`);

  let from = toy.output().length;
  toy.tell('press');
  await toy.says(/played message (\S+) -> (\S+\.ogg)/, { from, timeoutMs: 30000 });
  await mine.locator('[data-state=heard]').waitFor({ timeout: 60000 });

  from = toy.output().length;
  toy.tell(`record ${REPLY}`);
  await toy.says(/server has recording/, { from, timeoutMs: 60000 });
  const reply = g.locator('li.message', { hasText: 'Ada (toy)' }).first();
  await reply.waitFor({ timeout: 30000 });
  await reply.getByRole('button', { name: /^Play/ }).click();
  const duration = await reply.locator('audio').evaluate(
    (a) => new Promise((resolve) => {
      const el = /** @type {HTMLAudioElement} */ (a);
      if (el.readyState >= 1) resolve(el.duration);
      el.onloadedmetadata = () => resolve(el.duration);
      el.onerror = () => resolve(-1);
    }),
  );
  assert.ok(Number(duration) > 0, `the grandparent opens and plays the answer (${duration} s)`);
  onlyChannelMessages(radio.messages);
  assert.ok(radio.messages.some((m) => m.length === channelSizes().max), 'the message crossed in full-size records');
  assert.deepEqual(gran.errors, []);
  assert.deepEqual(phone.errors, []);
});

test('when the toy goes out of reach the phone says so, and connects again', { timeout: 120000 }, async () => {
  const page = phone.page;
  const section = page.locator('section.phone-relay');
  await section.getByRole('status').filter({ hasText: 'Relaying for' }).waitFor();
  let from = toy.output().length;
  await radio.outOfReach();
  await section.getByRole('status').filter({ hasText: 'The toy is out of reach.' }).waitFor();
  await toy.says(/^disconnected$/m, { from, timeoutMs: 30000 });
  await expectAccessible(page, 'the phone relay, toy out of reach');
  await screenshot(page, 'ble-relay-out-of-reach');
  from = toy.output().length;
  await radio.backInReach();
  await section.getByRole('button', { name: 'Connect again' }).click();
  await section.getByRole('status').filter({ hasText: 'Relaying for' }).waitFor({ timeout: 30000 });
  await toy.says(/^connected$/m, { from, timeoutMs: 30000 });
  assert.deepEqual(phone.errors, []);
});
