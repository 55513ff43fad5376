/**
 * The admin token, asked for when an admin action needs it and kept in sessionStorage only:
 * it goes with the tab, never to localStorage or a cookie.
 */
const KEY = "hc.adminToken";

export function getAdminToken(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function setAdminToken(token: string): void {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    /* storage disabled: the token is asked for again next time */
  }
}

export function clearAdminToken(): void {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    /* nothing stored */
  }
}
