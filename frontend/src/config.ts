import { configureApi } from "./api/client";

export interface AppConfig {
  apiUrl: string;
  source: "config.json" | "env" | "same-origin";
}

/** The path the app is served under, always ending in "/": vite's `base` ("/"). */
export function appBase(): string {
  const b = import.meta.env.BASE_URL;
  return b && b.startsWith("/") ? b : "/";
}

/** React Router basename: the app base without its trailing slash ("" at the root). */
export function routerBasename(): string {
  return appBase().replace(/\/+$/, "");
}

/**
 * A deep link that reached us as /#/results/<id> (the LocalStack S3 website's routing rule
 * redirects the app's routes there, since an S3 website can only answer them with a 404) is put
 * back to /results/<id> before the router starts.
 */
export function restoreHashRoute(loc: Pick<Location, "hash">, history: Pick<History, "replaceState">): void {
  if (loc.hash.startsWith("#/")) history.replaceState(null, "", loc.hash.slice(1));
}

/**
 * Resolve the API base URL:
 * 1. /config.json next to index.html (written at deploy time), `{"apiUrl": "...", "publicList": bool}`;
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
        return { apiUrl: json.apiUrl.trim().replace(/\/+$/, ""), source: "config.json" };
      }
    }
  } catch {
    // fall through
  }
  const env = import.meta.env.VITE_API_URL;
  if (env && env.trim()) return { apiUrl: env.trim().replace(/\/+$/, ""), source: "env" };
  return { apiUrl: "", source: "same-origin" };
}

export async function initConfig(): Promise<AppConfig> {
  const cfg = await loadConfig();
  configureApi(cfg.apiUrl);
  return cfg;
}
