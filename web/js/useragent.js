/**
 * A browser's User-Agent string as a person would name it: the browser and the system it
 * runs on ("Chrome", "Android"), for the Security page's list of sign-ins. Only the
 * common browsers and systems are told apart; anything else is named by what is known.
 */

/** Browsers, most specific first (Edge and Opera also say Chrome; Chrome also says Safari). */
const BROWSERS = /** @type {const} */ ([
  [/\bEdg(?:e|A|iOS)?\//, 'Edge'],
  [/\b(?:OPR|Opera)\//, 'Opera'],
  [/\bSamsungBrowser\//, 'Samsung Internet'],
  [/\b(?:Firefox|FxiOS)\//, 'Firefox'],
  [/\bCriOS\//, 'Chrome'],
  [/Chrom(?:e|ium)\//, 'Chrome'],
  [/\bVersion\/[\d.]+.*\bSafari\//, 'Safari'],
  [/\bAppleWebKit\/.*\bMobile\//, 'Safari'],
  [/\bcurl\//, 'curl'],
  [/\bpawpost\//i, 'pawpost app'],
]);

/** Systems, most specific first (Android also says Linux; iPhone also says Mac OS X). */
const SYSTEMS = /** @type {const} */ ([
  [/\biPhone\b/, 'iPhone'],
  [/\biPad\b/, 'iPad'],
  [/\bAndroid\b/, 'Android'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bWindows\b/, 'Windows'],
  [/\bMac OS X\b|\bMacintosh\b/, 'Mac'],
  [/\bLinux\b/, 'Linux'],
]);

/**
 * @param {string} userAgent
 * @returns {{ browser: string | null, system: string | null }}
 */
export function describeUserAgent(userAgent) {
  const ua = userAgent ?? '';
  const browser = BROWSERS.find(([re]) => re.test(ua))?.[1] ?? null;
  const system = SYSTEMS.find(([re]) => re.test(ua))?.[1] ?? null;
  return { browser, system };
}
