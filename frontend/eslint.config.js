// ESLint flat config: typescript-eslint's recommended rules and the React hooks
// rules, for the app, its tests, the Vite config and the Node scripts. `npm run lint`; `make lint` runs it.
import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/"] },
  js.configs.recommended,
  tseslint.configs.recommended,
  reactHooks.configs.flat.recommended,
  {
    languageOptions: {
      globals: { ...globals.browser },
    },
  },
  { files: ["eslint.config.js", "vite.config.ts", "scripts/**/*.mjs"], languageOptions: { globals: { ...globals.node } } },
);
