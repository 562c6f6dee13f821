// "Connect the toy through this phone": for a toy without Wi-Fi, or before its Wi-Fi is set
// up, a parent's phone near it carries its messages over Bluetooth (web/js/ble-relay.js).
// The phone only passes the toy's encrypted channel along; it cannot read it.
import { PhoneRelay, bluetoothAvailable, toyChannelUrl } from '../ble-relay.js';
import { t } from '../i18n.js';
import { h } from '../util.js';

/** @type {PhoneRelay | null} one relay per page: the phone carries one toy at a time */
let running = null;

/**
 * The section, for the toy part of the family page.
 * @param {string} toyName the toy's name when the household has one named toy, else ''
 * @returns {HTMLElement}
 */
export function phoneRelaySection(toyName) {
  const intro = h('p', { class: 'hint', text: t('For a toy without Wi-Fi, or before its Wi-Fi is set up: keep this phone near the toy and this page open. The phone passes the toy\'s messages along without being able to read them.') });
  const section = h('section', { class: 'phone-relay', 'aria-labelledby': 'phone-relay-title' },
    h('h3', { id: 'phone-relay-title', text: t('Connect the toy through this phone') }),
    intro);
  if (!bluetoothAvailable()) {
    section.append(h('p', { class: 'notice', text: t('This browser cannot use Bluetooth. Open this page in Chrome or Edge on an Android phone or a computer to connect the toy through it.') }));
    return section;
  }
  const state = h('p', { class: 'relay-state', role: 'status', 'aria-live': 'polite' });
  const problem = h('p', { class: 'error', role: 'alert' });
  const connect = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'primary', text: t('Connect the toy') }));
  const again = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', hidden: true, text: t('Connect again') }));
  const stop = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', hidden: true, text: t('Stop') }));
  const who = toyName || t('your toy');

  /** @param {import('../ble-relay.js').RelayState} now */
  const show = (now) => {
    const words = {
      choosing: t('Choose the toy in the list your phone shows.'),
      connecting: t('Connecting to the toy…'),
      relaying: t('Relaying for {name}. Keep this page open and the phone near the toy.', { name: who }),
      server: t('The toy is connected, but pawpost cannot be reached. Trying again…'),
      'out-of-reach': t('The toy is out of reach. Bring the phone closer to it, then connect again.'),
      stopped: '',
    };
    state.textContent = words[now];
    connect.hidden = now !== 'stopped';
    again.hidden = now !== 'out-of-reach';
    stop.hidden = now === 'stopped' || now === 'choosing';
    if (now !== 'stopped') problem.textContent = '';
  };

  connect.addEventListener('click', async () => {
    running?.stop();
    const relay = new PhoneRelay({ wsUrl: toyChannelUrl(window.location), onState: show });
    running = relay;
    try {
      await relay.start();
    } catch (e) {
      // The person closed the list without choosing: nothing to say.
      if (e instanceof DOMException && e.name === 'NotFoundError') return;
      problem.textContent = t('The toy could not be connected. Switch it on, bring the phone close, and try again.');
    }
  });
  again.addEventListener('click', async () => {
    try {
      await running?.connectToy();
    } catch {
      problem.textContent = t('The toy could not be connected. Switch it on, bring the phone close, and try again.');
    }
  });
  stop.addEventListener('click', () => running?.stop());
  if (running && running.state !== 'stopped') {
    // The page was drawn again while relaying: show the relay that still runs.
    running.onState = show;
    show(running.state);
  }
  section.append(state, problem, h('div', { class: 'row' }, connect, again, stop));
  return section;
}
