// eslint for INK's own scripts (scripts/test runs it): the browser scripts every page shares
// and the proxy's wrapper. Third-party code (node_modules) and built output are not INK's.
const js = require("@eslint/js");
const globals = require("globals");

module.exports = [
  { ignores: ["node_modules/**", "build/**", "test-output/**"] },
  js.configs.recommended,
  {
    files: ["ink_core/static/**/*.js", "ink_services/**/static/**/*.js", "ink/static/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "script", globals: { ...globals.browser } },
  },
  {
    files: ["ink_spawner/**/*.js", "eslint.config.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "commonjs", globals: { ...globals.node } },
  },
];
