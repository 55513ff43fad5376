import { AxiosError, AxiosHeaders } from "axios";
import { afterEach, describe, expect, it } from "vitest";
import { http, parseRetryAfter, reachability, toApiError } from "./client";

function axiosErr(status: number | null, data?: unknown, headers: Record<string, string> = {}) {
  const config = { headers: new AxiosHeaders() };
  const response =
    status === null
      ? undefined
      : { status, statusText: "", data, headers: new AxiosHeaders(headers), config };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return new AxiosError("boom", status === null ? "ERR_NETWORK" : "ERR_BAD_REQUEST", config as any, null, response as any);
}

const realAdapter = http.defaults.adapter;

afterEach(() => {
  reachability.set(false);
  http.defaults.adapter = realAdapter; // a stub left behind would answer other tests' requests
});

describe("toApiError", () => {
  it("reads the error envelope", () => {
    const e = toApiError(
      axiosErr(400, { error: { code: "validation_error", message: "bad", details: [{ field: "target", message: "nope" }] } }),
    );
    expect(e.status).toBe(400);
    expect(e.code).toBe("validation_error");
    expect(e.message).toBe("bad");
    expect(e.details).toEqual([{ field: "target", message: "nope" }]);
    expect(e.network).toBe(false);
  });

  it("reads Retry-After on a 429", () => {
    const e = toApiError(axiosErr(429, { error: { code: "rate_limited", message: "slow down" } }, { "Retry-After": "37" }));
    expect(e.retryAfter).toBe(37);
  });

  it("falls back to retry_after in the body when the header is not exposed", () => {
    const e = toApiError(axiosErr(429, { error: { code: "rate_limited", message: "slow down", retry_after: 42 } }));
    expect(e.retryAfter).toBe(42);
  });

  it("marks a missing answer as a network error", () => {
    const e = toApiError(axiosErr(null));
    expect(e.network).toBe(true);
    expect(e.status).toBeNull();
  });

  it("copes with a body that is not the envelope", () => {
    const e = toApiError(axiosErr(502, "<html>Bad gateway</html>"));
    expect(e.message).toBe("HTTP 502");
    expect(e.details).toEqual([]);
  });
});

describe("parseRetryAfter", () => {
  it("takes seconds or an HTTP date", () => {
    expect(parseRetryAfter("12")).toBe(12);
    expect(parseRetryAfter("1.2")).toBe(2);
    const now = Date.parse("2025-01-01T00:00:00Z");
    expect(parseRetryAfter("Wed, 01 Jan 2025 00:01:00 GMT", now)).toBe(60);
    expect(parseRetryAfter(undefined)).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
  });
});

describe("reachability", () => {
  it("is set by a request that gets no answer and cleared by one that does", async () => {
    http.defaults.adapter = () => Promise.reject(axiosErr(null));
    await expect(http.get("/api/agents")).rejects.toMatchObject({ network: true });
    expect(reachability.get()).toBe(true);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    http.defaults.adapter = (config: any) => Promise.resolve({ data: { items: [] }, status: 200, statusText: "OK", headers: {}, config });
    await http.get("/api/agents");
    expect(reachability.get()).toBe(false);
  });
});
