/**
 * The phone relay: a parent's phone near a toy without Wi-Fi carries the toy's encrypted
 * channel (toy protocol version 3) between its Bluetooth link and the server's channel
 * WebSocket (/api/v1/toy/channel), as `pawpost relay` does for a UART. It reassembles the
 * toy's fragments into the channel's messages and fragments the server's messages for the
 * toy; it cannot read them (each is a padded record encrypted between toy and server) and
 * never alters one: the toy and the server check everything themselves. GATT profile:
 * docs/TOY-PROTOCOL.md, "Through a phone: the GATT profile".
 */
import { Fragmenter, Reassembler } from './ble-frames.js';

/** The pawpost toy's GATT service. */
export const SERVICE_UUID = '922b0001-c08a-40a6-abcb-3b99f0d93f7a';
/** Fragments from the phone to the toy (write without response). */
export const TO_TOY_UUID = '922b0002-c08a-40a6-abcb-3b99f0d93f7a';
/** Fragments from the toy to the phone (notify). */
export const FROM_TOY_UUID = '922b0003-c08a-40a6-abcb-3b99f0d93f7a';
/** The server connection's state: "server up", "server down" (written), "reconnect" (notified). */
export const CONTROL_UUID = '922b0004-c08a-40a6-abcb-3b99f0d93f7a';

/** Control: the phone opened a server connection; the ATT MTU (u16 LE) follows. */
export const SERVER_UP = 0x02;
/** Control: the phone's server connection closed. */
export const SERVER_DOWN = 0x03;
/** Control: the toy asks for a new server connection after the milliseconds (u32 LE) that follow. */
export const RECONNECT = 0x04;

/**
 * The ATT MTU the relay fragments for. Web Bluetooth does not tell a page the MTU it
 * negotiated, so the relay uses the one every BLE link supports; the toy learns it from
 * "server up".
 */
export const RELAY_MTU = 23;
/** The wait before opening the server connection again after it failed or closed. */
export const SERVER_RETRY_MS = 1000;
/** The longest wait a toy may ask for before a new server connection (its back-off's ceiling). */
export const MAX_TOY_WAIT_MS = 5 * 60 * 1000;
/**
 * The largest message of the toy's channel, either way (`MAX_MESSAGE_LEN` of
 * crates/pawpost-channel: a record padded to 17 408 bytes, its 2 header bytes and the
 * 16-byte tag). The toy sends nothing larger, the server accepts nothing larger, and a
 * larger one from the server is not passed on.
 */
export const MAX_RECORD_LEN = 2 + 17408 + 16;
/** The server's path for the toy's channel (toy protocol version 3). */
export const TOY_CHANNEL_PATH = '/api/v1/toy/channel';

/**
 * What the relay is doing, for the screen: `choosing` (the phone's device list is open),
 * `connecting` (to the toy), `relaying`, `server` (the server cannot be reached; trying
 * again), `out-of-reach` (the toy's Bluetooth link is gone), `stopped`.
 * @typedef {'choosing' | 'connecting' | 'relaying' | 'server' | 'out-of-reach' | 'stopped'} RelayState
 */

/** Whether this browser can reach Bluetooth devices (Chromium-based browsers can; Firefox and Safari cannot). */
export function bluetoothAvailable() {
  const bluetooth = /** @type {any} */ (navigator).bluetooth;
  return Boolean(bluetooth && typeof bluetooth.requestDevice === 'function');
}

/**
 * The toy's channel WebSocket on the server this page came from.
 * @param {Location} location
 */
export function toyChannelUrl(location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${TOY_CHANNEL_PATH}`;
}

/**
 * @param {DataView} view
 * @returns {Uint8Array}
 */
function bytesOf(view) {
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

/** One relay between one toy and the server. */
export class PhoneRelay {
  /**
   * @param {{ wsUrl: string, onState: (state: RelayState) => void }} options
   */
  constructor({ wsUrl, onState }) {
    this.wsUrl = wsUrl;
    this.onState = onState;
    /** @type {RelayState} */
    this.state = 'stopped';
    /** @type {any} the BluetoothDevice */
    this.device = null;
    /** @type {any} */
    this.toToy = null;
    /** @type {any} */
    this.control = null;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {Fragmenter | null} */
    this.fragmenter = null;
    /** @type {Reassembler | null} */
    this.reassembler = null;
    /** Writes to the toy, one after another (fragments in order, "server up" before them). */
    this.writes = Promise.resolve();
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.retry = null;
    /** The wait the toy asked for before the next server connection, while its request is carried out. */
    /** @type {number | null} */
    this.toyWait = null;
    this.stopped = false;
    /** @type {WeakSet<object>} */
    this.listening = new WeakSet();
  }

  /** @param {RelayState} state */
  #set(state) {
    this.state = state;
    this.onState(state);
  }

  /** Asks the browser for the toy (the person picks it), then connects and relays. */
  async start() {
    const bluetooth = /** @type {any} */ (navigator).bluetooth;
    this.#set('choosing');
    try {
      this.device = await bluetooth.requestDevice({ filters: [{ services: [SERVICE_UUID] }] });
    } catch (e) {
      this.#set('stopped');
      throw e;
    }
    this.device.addEventListener('gattserverdisconnected', () => this.#toyGone());
    await this.connectToy();
  }

  /** Connects to the chosen toy's link (again, after it was out of reach) and opens the server connection. */
  async connectToy() {
    this.stopped = false;
    this.#set('connecting');
    try {
      const gatt = await this.device.gatt.connect();
      const service = await gatt.getPrimaryService(SERVICE_UUID);
      const toToy = await service.getCharacteristic(TO_TOY_UUID);
      const fromToy = await service.getCharacteristic(FROM_TOY_UUID);
      const control = await service.getCharacteristic(CONTROL_UUID);
      // The browser hands out the same characteristic objects on every connection to the
      // device: listen to each once.
      if (!this.listening.has(fromToy)) {
        fromToy.addEventListener('characteristicvaluechanged', (/** @type {any} */ e) => this.#fromToy(bytesOf(e.target.value)));
        control.addEventListener('characteristicvaluechanged', (/** @type {any} */ e) => this.#control(bytesOf(e.target.value)));
        this.listening.add(fromToy);
      }
      await fromToy.startNotifications();
      await control.startNotifications();
      this.control = control;
      this.toToy = toToy;
      this.writes = Promise.resolve();
    } catch (e) {
      this.#toyGone();
      throw e;
    }
    this.#openServer();
  }

  /** Stops relaying: closes the server connection and the toy's link. */
  stop() {
    this.stopped = true;
    this.#closeServer();
    if (this.device?.gatt?.connected) this.device.gatt.disconnect();
    this.#set('stopped');
  }

  #openServer() {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    if (this.stopped || !this.toToy) return;
    const ws = new WebSocket(this.wsUrl);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let opened = false;
    ws.addEventListener('open', () => {
      opened = true;
      // Each server connection numbers its frames from 0 again, on both sides.
      this.fragmenter = new Fragmenter(RELAY_MTU);
      this.reassembler = new Reassembler(RELAY_MTU, MAX_RECORD_LEN);
      const up = new Uint8Array([SERVER_UP, RELAY_MTU & 0xff, RELAY_MTU >> 8]);
      this.#write(() => this.control.writeValueWithResponse(up));
      this.#set('relaying');
    });
    ws.addEventListener('message', (event) => {
      if (!(event.data instanceof ArrayBuffer) || !this.fragmenter) return;
      // Larger than any message of the channel: the toy would refuse it; dropped, as
      // `pawpost relay` drops what the link cannot carry.
      if (event.data.byteLength > MAX_RECORD_LEN) return;
      let fragments;
      try {
        fragments = this.fragmenter.fragment(new Uint8Array(event.data));
      } catch {
        return;
      }
      for (const fragment of fragments) this.#write(() => this.toToy.writeValueWithoutResponse(fragment));
    });
    ws.addEventListener('close', () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.fragmenter = null;
      this.reassembler = null;
      if (opened && this.toToy) this.#write(() => this.control.writeValueWithResponse(new Uint8Array([SERVER_DOWN])));
      if (this.stopped || !this.toToy) return;
      const wait = this.toyWait ?? SERVER_RETRY_MS;
      this.toyWait = null;
      if (!opened) this.#set('server');
      this.retry = setTimeout(() => this.#openServer(), wait);
    });
  }

  #closeServer() {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    const ws = this.ws;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close();
  }

  /**
   * One write to the toy, after the ones before it. A failed write means the link is gone,
   * which `gattserverdisconnected` reports.
   * @param {() => Promise<void>} write
   */
  #write(write) {
    this.writes = this.writes.then(write).catch(() => {});
  }

  /** @param {Uint8Array} fragment */
  #fromToy(fragment) {
    const ws = this.ws;
    if (!this.reassembler || !ws || ws.readyState !== WebSocket.OPEN) return;
    let frame;
    try {
      frame = this.reassembler.push(fragment);
    } catch {
      return; // damaged, duplicated or out of order: the frame is dropped, the next one comes through
    }
    if (frame) ws.send(/** @type {Uint8Array<ArrayBuffer>} */ (frame.data));
  }

  /** @param {Uint8Array} message */
  #control(message) {
    if (message[0] !== RECONNECT || message.length !== 5) return;
    const wait = new DataView(message.buffer, message.byteOffset, 5).getUint32(1, true);
    if (this.ws) {
      this.toyWait = Math.min(wait, MAX_TOY_WAIT_MS);
      this.#closeServer();
    } else if (this.toToy && !this.stopped) {
      if (this.retry) clearTimeout(this.retry);
      this.retry = setTimeout(() => this.#openServer(), Math.min(wait, MAX_TOY_WAIT_MS));
    }
  }

  #toyGone() {
    this.toToy = null;
    this.#closeServer();
    this.ws = null;
    this.fragmenter = null;
    this.reassembler = null;
    if (!this.stopped) this.#set('out-of-reach');
  }
}
