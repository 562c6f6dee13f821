// The kinds of notification mail, in the words the Security page and the activity list
// use. The server knows the same names (GET /api/v1/accounts/me/notifications).

import { t } from './i18n.js';

/** @type {Array<{ kind: string, label: string }>} */
export const NOTIFICATION_KINDS = [
  { kind: 'child_replied', label: t('the toy sends a new message in one of my families') },
  { kind: 'approval_waiting', label: t('someone joined a family I look after and waits for my approval') },
  { kind: 'approved', label: t('a parent approved me in a family') },
  { kind: 'message_not_played', label: t('a message I sent could not be played by the toy') },
  { kind: 'invitation', label: t('someone invites me to a family') },
];

/** @type {Record<string, string>} */
export const NOTIFICATION_WORDS = Object.fromEntries(NOTIFICATION_KINDS.map((k) => [k.kind, k.label]));
