import { configureApi } from "./api/client";
import { configureLive } from "./lib/liveCheck";

export interface AppConfig {
  apiUrl: string;
  source: "config.json" | "env" | "same-origin";
  /** The WebSocket endpoint for live results (`wsUrl` in config.json, else VITE_WS_URL); none: poll. */
  wsUrl?: string;
}

function cleanWsUrl(value: unknown): string | undefined {
  return typeof value === "string" && /^wss?:\/\//.test(value.trim()) ? value.trim() : undefined;
}

/** The path the app is served under, always ending in "/" (see index.html). */
export function appBase(): string {
  const b = typeof window !== "undefined" ? window.__APP_BASE__ : undefined;
  return b && b.startsWith("/") ? b : "/";
}

/** React Router basename: the app base without its trailing slash ("" at the root). */
export function routerBasename(): string {
  return appBase().replace(/\/+$/, "");
}

/**
 * Resolve the API base URL:
 * 1. ./config.json next to index.html (written at deploy time), `{"apiUrl": "...", "wsUrl": "ws://..."}`;
 * 2. VITE_API_URL at build time;
 * 3. the page's own origin.
 */
export async function loadConfig(fetchImpl: typeof fetch = fetch): Promise<AppConfig> {
  try {
    const res = await fetchImpl(`${appBase()}config.json`, { cache: "no-store" });
    if (res.ok) {
      const text = await res.text();
      // A SPA fallback may answer with index.html: only JSON counts.
      const json = JSON.parse(text);
      if (json && typeof json.apiUrl === "string" && json.apiUrl.trim()) {
        return {
          apiUrl: json.apiUrl.trim().replace(/\/+$/, ""),
          source: "config.json",
          wsUrl: cleanWsUrl(json.wsUrl) ?? cleanWsUrl(import.meta.env.VITE_WS_URL),
        };
      }
    }
  } catch {
    // fall through
  }
  const env = import.meta.env.VITE_API_URL;
  const wsUrl = cleanWsUrl(import.meta.env.VITE_WS_URL);
  if (env && env.trim()) return { apiUrl: env.trim().replace(/\/+$/, ""), source: "env", wsUrl };
  return { apiUrl: "", source: "same-origin", wsUrl };
}

export async function initConfig(): Promise<AppConfig> {
  const cfg = await loadConfig();
  configureApi(cfg.apiUrl);
  configureLive(cfg.wsUrl ?? null);
  return cfg;
}
