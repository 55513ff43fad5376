/**
 * "My checks": the ids of the checks created in this browser, newest first, kept in localStorage.
 * The API's public list shows every user's targets (and is off on some stages), so the dashboard
 * lists these instead; nothing about them leaves the browser.
 */
const KEY = "hostchecker.myChecks";
export const MY_CHECKS_MAX = 50;

export interface MyCheck {
  id: string;
  target: string;
  created_at: string;
}

const listeners = new Set<() => void>();
let cache: MyCheck[] | null = null;

function read(): MyCheck[] {
  try {
    const parsed = JSON.parse(window.localStorage.getItem(KEY) ?? "[]");
    return Array.isArray(parsed) ? parsed.filter((c) => c && typeof c.id === "string") : [];
  } catch {
    return []; // no storage (private mode) or a value we did not write
  }
}

export function myChecks(): MyCheck[] {
  cache ??= read();
  return cache;
}

export function rememberCheck(c: MyCheck): void {
  cache = [c, ...myChecks().filter((x) => x.id !== c.id)].slice(0, MY_CHECKS_MAX);
  try {
    window.localStorage.setItem(KEY, JSON.stringify(cache));
  } catch {
    // storage full or refused: the list lives for this tab only
  }
  listeners.forEach((l) => l());
}

export function forgetMyChecks(): void {
  cache = [];
  try {
    window.localStorage.removeItem(KEY);
  } catch {
    // as above
  }
  listeners.forEach((l) => l());
}

export function subscribeMyChecks(listener: () => void): () => void {
  listeners.add(listener);
  const onStorage = (e: StorageEvent) => {
    if (e.key !== KEY) return;
    cache = null; // another tab changed it
    listener();
  };
  window.addEventListener("storage", onStorage);
  return () => {
    listeners.delete(listener);
    window.removeEventListener("storage", onStorage);
  };
}
