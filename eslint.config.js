// Lints the web app (web/js, which runs in browsers, and its service worker web/sw.js), its tests and tools (Node).
import js from '@eslint/js';
import globals from 'globals';

export default [
  js.configs.recommended,
  {
    files: ['web/js/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ['web/sw.js'],
    languageOptions: { globals: globals.serviceworker },
  },
  {
    files: ['web/test/**/*.js', 'web/tools/**/*.mjs', 'eslint.config.js'],
    languageOptions: { globals: globals.node },
  },
  {
    // The browser stories also hand functions to the page, which run there.
    files: ['web/test/browser/**/*.js'],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
];
