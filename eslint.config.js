// @ts-check
import tseslint from "typescript-eslint";
import { boundaries } from "./scripts/eslint-boundaries.js";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "bench/results/**", "**/*.js", "!eslint.config.js"] },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    plugins: { moat: { rules: { boundaries } } },
    rules: {
      "moat/boundaries": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "off",
      "no-console": "off",
      eqeqeq: ["error", "always"],
    },
  },
);
