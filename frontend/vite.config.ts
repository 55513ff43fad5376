/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";

// base: "/": every asset is fetched from the site root (/assets/...), so a deep link such as
// /results/<id> or /agents/<id>/x loads the same files as / does. The app is served at the root
// of its origin (CloudFront, the S3 website, scripts/ui_server.py).
export default defineConfig({
  base: "/",
  plugins: [react(), tailwindcss()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
  },
  server: {
    host: "127.0.0.1",
    port: 5173,
  },
  preview: {
    host: "127.0.0.1",
    port: 4173,
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    css: false,
    include: ["src/**/*.test.{ts,tsx}"],
    // A guard against a hung test, not a speed target: on a loaded 2-core machine a
    // user-event typing test took over the 5 s default, and its keystrokes leaked into the next test.
    testTimeout: 30_000,
  },
});
