import { configureApi } from "./api/client";
import { configureLive } from "./lib/liveCheck";

export interface AppConfig {
  apiUrl: string;
  source: "config.json" | "env" | "same-origin";
  /** Whether the API lists every user's checks on this stage (config.json `publicList`, default true). */
  publicList: boolean;
  /** The WebSocket endpoint for live results (`wsUrl` in config.json, else VITE_WS_URL); none: poll. */
  wsUrl?: string;
}

function cleanWsUrl(value: unknown): string | undefined {
  return typeof value === "string" && /^wss?:\/\//.test(value.trim()) ? value.trim() : undefined;
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

/** config.json as written at deploy time; anything else (an HTML fallback page, a typo) counts as absent. */
async function fetchConfigJson(fetchImpl: typeof fetch): Promise<Record<string, unknown> | null> {
  try {
    const res = await fetchImpl(`${appBase()}config.json`, { cache: "no-store" });
    if (!res.ok) return null;
    const json = JSON.parse(await res.text());
    return json && typeof json === "object" ? json : null;
  } catch {
    return null;
  }
}

/**
 * Resolve the stage's settings:
 * - the API base URL: 1. /config.json next to index.html (written at deploy time),
 *   `{"apiUrl": "...", "wsUrl": "ws://..."}`; 2. VITE_API_URL at build time; 3. the page's own origin;
 * - `wsUrl`: config.json's, else VITE_WS_URL at build time; none: the Results page polls;
 * - `publicList` (config.json, default true): whether the stage's API lists every user's checks
 *   (HC_PUBLIC_LIST; off on prod). Off, the dashboard shows only the checks made in this browser.
 */
export async function loadConfig(fetchImpl: typeof fetch = fetch): Promise<AppConfig> {
  const json = await fetchConfigJson(fetchImpl);
  const publicList = typeof json?.publicList === "boolean" ? json.publicList : true;
  const buildWsUrl = cleanWsUrl(import.meta.env.VITE_WS_URL);
  if (typeof json?.apiUrl === "string" && json.apiUrl.trim()) {
    const wsUrl = cleanWsUrl(json.wsUrl) ?? buildWsUrl;
    return { apiUrl: json.apiUrl.trim().replace(/\/+$/, ""), source: "config.json", publicList, wsUrl };
  }
  const env = import.meta.env.VITE_API_URL;
  if (env && env.trim()) return { apiUrl: env.trim().replace(/\/+$/, ""), source: "env", publicList, wsUrl: buildWsUrl };
  return { apiUrl: "", source: "same-origin", publicList, wsUrl: buildWsUrl };
}

let current: AppConfig = { apiUrl: "", source: "same-origin", publicList: true };

/** The settings initConfig loaded (defaults before that, and in tests). */
export function appConfig(): AppConfig {
  return current;
}

export function setAppConfig(cfg: Partial<AppConfig>): void {
  current = { ...current, ...cfg };
}

export async function initConfig(): Promise<AppConfig> {
  const cfg = await loadConfig();
  configureApi(cfg.apiUrl);
  configureLive(cfg.wsUrl ?? null);
  setAppConfig(cfg);
  return cfg;
}
