// Build the explorer into the Python package's static folder, with relative asset paths so the
// bundle works under any mount point (served by `lmxray serve` or opened from a file).
import { defineConfig } from "vitest/config";

export default defineConfig({
  base: "./",
  build: {
    outDir: "../src/lmxray/server/static",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    modulePreload: { polyfill: false },
  },
  test: { include: ["test/**/*.test.ts"], environment: "node" },
});
