// @vitest-environment node
import { describe, expect, it } from "vitest";
import { loadSpec, OUTPUTS, readOutput } from "../../scripts/gen-types.mjs";

// tests/unit/test_frontend_openapi.py checks that openapi.json is what the API serves;
// this checks that the generated files are what openapi.json makes.
describe("generated API types", () => {
  it.each(Object.keys(OUTPUTS))("%s is up to date with openapi.json (npm run gen:types)", async (path) => {
    const spec = await loadSpec();
    const committed = await readOutput(path);
    expect(committed, `${path} is stale: run \`npm run gen:types\``).toBe(await OUTPUTS[path](spec));
  });
});
