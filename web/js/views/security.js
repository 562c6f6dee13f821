// Security: where this account is signed in, its devices' fingerprints, and paired toys.
import { api } from '../api.js';
import { formatTime, h } from '../util.js';

/** @param {import('../app.js').App} app */
export async function securityView(app) {
  /** @type {[any[], any[], any[]]} */
  const [sessions, devices, households] = await Promise.all([
    api('GET', '/api/v1/sessions'),
    api('GET', '/api/v1/devices'),
    api('GET', '/api/v1/households'),
  ]);
  const sessionList = h(
    'ul',
    { class: 'sessions' },
    ...sessions.map((s) =>
      h('li', {},
        h('strong', { text: s.user_agent || 'Unknown browser' }), s.current ? ' (this session)' : null,
        h('div', { class: 'muted', text: `from ${s.client_address || 'unknown address'} · signed in ${formatTime(s.created_at)} · expires ${formatTime(s.expires_at)}` }),
      ),
    ),
  );
  const deviceList = h(
    'ul',
    { class: 'devices' },
    ...devices.map((d) =>
      h('li', {},
        h('strong', { text: d.label }), d.device_id === app.device?.id ? ' (this browser)' : null,
        h('div', { class: 'fingerprint' }, 'Fingerprint: ', h('code', { text: d.fingerprint })),
        h('div', { class: 'muted', text: `added ${formatTime(d.created_at)}` }),
      ),
    ),
  );
  const toyList = h('ul', { class: 'toys' });
  for (const hh of households.filter((x) => x.status === 'approved')) {
    /** @type {any[]} */
    let toys = [];
    try {
      toys = await api('GET', `/api/v1/households/${hh.id}/toys`);
    } catch {
      try {
        toys = (await api('GET', `/api/v1/households/${hh.id}/devices`)).filter((/** @type {any} */ d) => d.kind === 'toy');
      } catch {
        toys = [];
      }
    }
    for (const t of toys) {
      toyList.append(
        h('li', {},
          h('strong', { text: `${t.label || 'Toy'} in ${hh.name}` }), ' ',
          'online' in t ? h('span', { class: `online-${t.online ? 'yes' : 'no'}`, text: t.online ? 'online' : 'offline' }) : null,
          h('div', { class: 'fingerprint' }, 'Fingerprint: ', h('code', { text: t.fingerprint })),
        ),
      );
    }
  }
  return h(
    'section',
    { class: 'security' },
    h('h1', { text: 'Security' }),
    h('section', { 'aria-labelledby': 'sessions-title' }, h('h2', { id: 'sessions-title', text: 'Where you are signed in' }), sessionList),
    h('section', { 'aria-labelledby': 'devices-title' },
      h('h2', { id: 'devices-title', text: 'Your devices' }),
      h('p', { class: 'hint', text: 'Each browser keeps its own keys; its private keys never leave it. Compare fingerprints with your family to be sure nobody swapped keys.' }),
      app.device ? h('p', {}, 'This browser: ', h('code', { class: 'fingerprint', text: app.device.fingerprint })) : null,
      deviceList,
    ),
    h('section', { 'aria-labelledby': 'toys-title' }, h('h2', { id: 'toys-title', text: 'Paired toys' }), toyList.childElementCount ? toyList : h('p', { text: 'No toy paired.' })),
  );
}
