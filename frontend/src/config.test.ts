import { afterEach, describe, expect, it, vi } from "vitest";
import { appBase, loadConfig, routerBasename } from "./config";

function fakeFetch(status: number, body: string) {
  return vi.fn(async () => new Response(body, { status })) as unknown as typeof fetch;
}

afterEach(() => {
  delete window.__APP_BASE__;
  vi.unstubAllEnvs();
});

describe("loadConfig", () => {
  it("uses apiUrl from config.json next to index.html", async () => {
    window.__APP_BASE__ = "/ui/";
    const f = fakeFetch(200, JSON.stringify({ apiUrl: "http://127.0.0.1:8000/" }));
    await expect(loadConfig(f)).resolves.toEqual({ apiUrl: "http://127.0.0.1:8000", source: "config.json" });
    expect(f).toHaveBeenCalledWith("/ui/config.json", expect.anything());
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
    });
  });

  it("falls back to the same origin", async () => {
    vi.stubEnv("VITE_API_URL", "");
    await expect(loadConfig(fakeFetch(404, "not found"))).resolves.toEqual({ apiUrl: "", source: "same-origin" });
    const failing = vi.fn(async () => {
      throw new TypeError("offline");
    }) as unknown as typeof fetch;
    await expect(loadConfig(failing)).resolves.toEqual({ apiUrl: "", source: "same-origin" });
  });
});

describe("app base", () => {
  it("defaults to the root", () => {
    expect(appBase()).toBe("/");
    expect(routerBasename()).toBe("");
    window.__APP_BASE__ = "/bucket/";
    expect(routerBasename()).toBe("/bucket");
  });
});
