import { afterEach, describe, expect, it, vi } from "vitest";
import { appBase, loadConfig, restoreHashRoute, routerBasename } from "./config";

function fakeFetch(status: number, body: string) {
  return vi.fn(async () => new Response(body, { status })) as unknown as typeof fetch;
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe("loadConfig", () => {
  it("uses apiUrl from config.json next to index.html", async () => {
    const f = fakeFetch(200, JSON.stringify({ apiUrl: "http://127.0.0.1:8000/" }));
    await expect(loadConfig(f)).resolves.toEqual({ apiUrl: "http://127.0.0.1:8000", source: "config.json", publicList: true });
    expect(f).toHaveBeenCalledWith("/config.json", expect.anything());
  });

  it("reads wsUrl for live results next to apiUrl, and only a ws(s):// one", async () => {
    const f = fakeFetch(200, JSON.stringify({ apiUrl: "http://127.0.0.1:8000", wsUrl: "ws://127.0.0.1:8391" }));
    await expect(loadConfig(f)).resolves.toMatchObject({ wsUrl: "ws://127.0.0.1:8391" });
    const bad = fakeFetch(200, JSON.stringify({ apiUrl: "http://127.0.0.1:8000", wsUrl: "http://nope" }));
    expect((await loadConfig(bad)).wsUrl).toBeUndefined();
  });

  it("ignores an HTML fallback page and uses VITE_API_URL", async () => {
    vi.stubEnv("VITE_API_URL", "http://api.example:9000");
    await expect(loadConfig(fakeFetch(200, "<!doctype html><html></html>"))).resolves.toEqual({
      apiUrl: "http://api.example:9000",
      source: "env",
      publicList: true,
    });
  });

  it("falls back to the same origin", async () => {
    vi.stubEnv("VITE_API_URL", "");
    await expect(loadConfig(fakeFetch(404, "not found"))).resolves.toEqual({ apiUrl: "", source: "same-origin", publicList: true });
    const failing = vi.fn(async () => {
      throw new TypeError("offline");
    }) as unknown as typeof fetch;
    await expect(loadConfig(failing)).resolves.toEqual({ apiUrl: "", source: "same-origin", publicList: true });
  });
});

it("reads publicList from config.json", async () => {
  const f = fakeFetch(200, JSON.stringify({ apiUrl: "https://api.example", publicList: false }));
  await expect(loadConfig(f)).resolves.toMatchObject({ apiUrl: "https://api.example", publicList: false });
});

it("reads publicList and wsUrl side by side, as deploy writes them", async () => {
  const f = fakeFetch(200, JSON.stringify({ apiUrl: "https://api.example", wsUrl: "wss://ws.example/v1", publicList: false }));
  await expect(loadConfig(f)).resolves.toEqual({
    apiUrl: "https://api.example",
    source: "config.json",
    publicList: false,
    wsUrl: "wss://ws.example/v1",
  });
});

describe("app base", () => {
  it("is the root, so deep links fetch the same assets", () => {
    expect(appBase()).toBe("/");
    expect(routerBasename()).toBe("");
  });

  it("puts a /#/results/<id> deep link back to its path", () => {
    const replaceState = vi.fn();
    restoreHashRoute({ hash: "#/results/abc" }, { replaceState });
    expect(replaceState).toHaveBeenCalledWith(null, "", "/results/abc");
    restoreHashRoute({ hash: "#section" }, { replaceState });
    expect(replaceState).toHaveBeenCalledTimes(1);
  });
});
