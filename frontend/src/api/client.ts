import axios, { AxiosError, type AxiosInstance } from "axios";
import type { FieldDetail } from "./types";

/**
 * An API failure in one shape, whatever went wrong:
 * - `network`: no HTTP answer at all (API down, CORS refused, DNS...);
 * - otherwise `status` plus the `{error: {code, message, details}}` body.
 */
export class ApiError extends Error {
  status: number | null;
  code: string;
  details: FieldDetail[];
  retryAfter: number | null;
  network: boolean;

  constructor(opts: {
    message: string;
    status?: number | null;
    code?: string;
    details?: FieldDetail[];
    retryAfter?: number | null;
    network?: boolean;
  }) {
    super(opts.message);
    this.name = "ApiError";
    this.status = opts.status ?? null;
    this.code = opts.code ?? "error";
    this.details = opts.details ?? [];
    this.retryAfter = opts.retryAfter ?? null;
    this.network = opts.network ?? false;
  }
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date). */
export function parseRetryAfter(value: unknown, now: number = Date.now()): number | null {
  if (value === undefined || value === null || value === "") return null;
  const s = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.max(0, Math.ceil(Number(s)));
  const t = Date.parse(s);
  if (!Number.isNaN(t)) return Math.max(0, Math.ceil((t - now) / 1000));
  return null;
}

export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const ax = err as AxiosError;
  if (ax && ax.isAxiosError) {
    if (!ax.response) {
      return new ApiError({ message: "The API could not be reached", network: true, code: "network" });
    }
    const res = ax.response;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const body = res.data as any;
    const e = body && typeof body === "object" && body.error && typeof body.error === "object" ? body.error : null;
    const details: FieldDetail[] = Array.isArray(e?.details)
      ? e.details
          .filter((d: unknown) => d && typeof d === "object")
          .map((d: { field?: unknown; message?: unknown; loc?: unknown }) => ({
            field: typeof d.field === "string" ? d.field : undefined,
            message: typeof d.message === "string" ? d.message : String(d.message ?? "invalid"),
          }))
      : [];
    const headers = res.headers ?? {};
    // Retry-After is readable cross-origin only if the API lists it in
    // Access-Control-Expose-Headers; a retry_after in the error body also counts.
    const retryAfter =
      parseRetryAfter(typeof headers.get === "function" ? headers.get("retry-after") : headers["retry-after"]) ??
      parseRetryAfter(e?.retry_after ?? e?.retry_after_s ?? body?.retry_after);
    return new ApiError({
      message: (e && typeof e.message === "string" && e.message) || `HTTP ${res.status}`,
      status: res.status,
      code: (e && typeof e.code === "string" && e.code) || `http_${res.status}`,
      details,
      retryAfter,
    });
  }
  return new ApiError({ message: err instanceof Error ? err.message : String(err) });
}

// ---- reachability: a tiny external store the banner subscribes to ----------

type Listener = () => void;
let unreachable = false;
const listeners = new Set<Listener>();

export const reachability = {
  get: () => unreachable,
  set(value: boolean) {
    if (value === unreachable) return;
    unreachable = value;
    listeners.forEach((l) => l());
  },
  subscribe(l: Listener) {
    listeners.add(l);
    return () => listeners.delete(l);
  },
};

// ---- the axios instance -----------------------------------------------------

let apiBaseUrl = "";

export const http: AxiosInstance = axios.create({
  timeout: 20000,
  headers: { Accept: "application/json" },
});

http.interceptors.response.use(
  (res) => {
    reachability.set(false);
    return res;
  },
  (err) => {
    const e = toApiError(err);
    reachability.set(e.network);
    return Promise.reject(e);
  },
);

/** Point the client at the API. "" means same origin. */
export function configureApi(baseUrl: string) {
  apiBaseUrl = baseUrl.replace(/\/+$/, "");
  http.defaults.baseURL = apiBaseUrl || undefined;
}

/** The API's base URL as shown to people ("API unreachable at ..."). */
export function apiDisplayUrl(): string {
  return apiBaseUrl || window.location.origin;
}
