import { describe, expect, it } from "vitest";
import { result } from "../test/utils";
import type { CheckType } from "../api/types";
import { computeSummary, describeAssumed, describeOptions, summaryMedian, failureKinds, formatMs, formatWait, headline, outcomeOf, relativeTime, shortError, summaryLine } from "./format";

describe("summaryLine", () => {
  it("all OK", () => {
    expect(summaryLine("http", { ok: 3, failed: 0, pending: 0, total: 3, median_ms: 42 })).toBe(
      "HTTP OK from 3/3 agents, median 42 ms",
    );
  });
  it("partial failure", () => {
    expect(summaryLine("ping", { ok: 2, failed: 1, pending: 0, total: 3, median_ms: 12.5 })).toBe(
      "Ping OK from 2/3 agents, failed on 1, median 13 ms",
    );
  });
  it("all failed", () => {
    expect(summaryLine("tcp", { ok: 0, failed: 3, pending: 0, total: 3, median_ms: null })).toBe("TCP failed on all 3 agents");
  });
  it("still running", () => {
    expect(summaryLine("dns", { ok: 1, failed: 0, pending: 2, total: 3, median_ms: 4.25 })).toBe(
      "DNS: 1/3 done, OK from 1, 2 pending, median 4.3 ms",
    );
  });
  it("says which layer failed", () => {
    expect(summaryLine("http", { ok: 0, failed: 3, pending: 0, total: 3, median_ms: null }, "median", null, "tls error")).toBe(
      "HTTP failed on all 3 agents (tls error)",
    );
    expect(summaryLine("tcp", { ok: 2, failed: 1, pending: 0, total: 3, median_ms: 12 }, "median", 12, "refused")).toBe(
      "TCP OK from 2/3 agents, failed on 1 (refused), median 12 ms",
    );
  });
  it("nothing back yet", () => {
    expect(summaryLine("ping", { ok: 0, failed: 0, pending: 3, total: 3, median_ms: null })).toBe("Ping: waiting for 3 agents…");
  });
  it("single agent", () => {
    expect(summaryLine("http", { ok: 1, failed: 0, pending: 0, total: 1, median_ms: 1500 })).toBe(
      "HTTP OK from 1/1 agent, median 1.50 s",
    );
  });
});

describe("computeSummary", () => {
  it("counts outcomes and takes the median of successful durations", () => {
    const rs = [
      result({ check_type: "http", duration_ms: 10 }),
      result({ check_type: "http", duration_ms: 30 }),
      result({ check_type: "http", status: "completed", success: false, duration_ms: 1000 }),
      result({ check_type: "http", status: "pending", success: null }),
      result({ check_type: "ping" }),
    ];
    expect(computeSummary(rs, "http")).toEqual({ ok: 2, failed: 1, pending: 1, total: 4, median_ms: 20 });
  });
});

describe("headline", () => {
  it.each([
    ["http", { status_code: 200, timings_ms: { total: 72.4 } }, "200 · 72 ms"],
    ["ping", { rtt_ms: { avg: 1.234 }, loss_pct: 25 }, "1.2 ms avg · 25% loss"],
    ["dns", { answers: [{ value: "192.0.2.1" }, { value: "192.0.2.2" }, { value: "192.0.2.3" }] }, "3 answers: 192.0.2.1, 192.0.2.2, …"],
    ["dns", { answers: [], rcode: "NXDOMAIN" }, "0 answers (NXDOMAIN)"],
    ["tcp", { connect_ms: 0.42 }, "0.4 ms connect"],
    ["traceroute", { hops: [{}, {}, {}], reached: true }, "3 hops"],
    ["traceroute", { hops: [{}], reached: false }, "1 hop (not reached)"],
  ])("%s %j", (type, data, text) => {
    expect(headline(result({ check_type: type as CheckType, data }))).toBe(text);
  });
});

describe("small formatters", () => {
  it("formatMs", () => {
    expect(formatMs(null)).toBe("—");
    expect(formatMs(3.14159)).toBe("3.1 ms");
    expect(formatMs(42.6)).toBe("43 ms");
    expect(formatMs(12345)).toBe("12.3 s");
  });
  it("relativeTime", () => {
    const now = Date.parse("2025-01-01T00:10:00Z");
    expect(relativeTime("2025-01-01T00:09:48Z", now)).toBe("12 s ago");
    expect(relativeTime("2025-01-01T00:05:00Z", now)).toBe("5 min ago");
    expect(relativeTime(null, now)).toBe("never");
  });
  it("outcomeOf", () => {
    expect(outcomeOf({ status: "in_progress", success: null })).toBe("running");
    expect(outcomeOf({ status: "failed", success: null })).toBe("failed");
    expect(outcomeOf({ status: "completed", success: false })).toBe("failed");
    expect(outcomeOf({ status: "completed", success: true })).toBe("ok");
  });
});

describe("failure wording", () => {
  it("counts the failure kinds of one type", () => {
    const rs = [
      result({ check_type: "http", status: "completed", success: false, error: { kind: "tls_error", message: "x" } }),
      result({ check_type: "http", status: "completed", success: false, error: { kind: "tls_error", message: "x" } }),
      result({ check_type: "http", status: "failed", success: false, error: { kind: "timeout", message: "x" } }),
      result({ check_type: "tcp", status: "completed", success: false, error: { kind: "refused", message: "x" } }),
      result({ check_type: "http", status: "completed", success: true }),
    ];
    expect(failureKinds(rs, "http")).toBe("tls error ×2, timeout");
    expect(failureKinds(rs, "tcp")).toBe("refused");
    expect(failureKinds(rs, "dns")).toBe("");
  });
  it("drops a leading copy of the URL from an error message", () => {
    expect(shortError("https://198.19.1.6/: certificate verification failed: self-signed certificate")).toBe(
      "certificate verification failed: self-signed certificate",
    );
    expect(shortError("no answer from 10.0.0.1 port 53 within 10 s")).toBe("no answer from 10.0.0.1 port 53 within 10 s");
  });
  it("formats a wait", () => {
    expect(formatWait(45)).toBe("45 s");
    expect(formatWait(1000)).toBe("16 min 40 s");
    expect(formatWait(3600)).toBe("1 h");
  });
});

describe("describeOptions", () => {
  it("names what is not a default, and always the DNS record type", () => {
    const options = {
      http: { method: "HEAD", expected_status: [200, 399], follow_redirects: true, verify_tls: false, timeout: 15 },
      ping: { count: 4, interval: 0.5 },
      dns: { record_type: "A", resolver: "198.19.1.6", port: 5353, protocol: "tcp" },
      tcp: { port: null },
    };
    expect(describeOptions(["http", "ping", "dns", "tcp"], options)).toEqual([
      "HTTP HEAD, TLS not verified",
      "DNS A @ 198.19.1.6:5353 TCP",
    ]);
    expect(describeOptions(["http"], null)).toEqual([]);
  });

  it("names a timeout or IP version that is not the default (the 1 s timeout that failed a check)", () => {
    const options = { http: { timeout: 1, ip_version: 6, max_redirects: 10 }, tcp: { port: 8443, timeout: 10, ip_version: null } };
    expect(describeOptions(["http", "tcp"], options)).toEqual(["HTTP timeout 1 s, IPv6 only", "TCP port 8443"]);
  });
});

describe("describeAssumed", () => {
  it("says the scheme and port a bare host was given", () => {
    expect(describeAssumed({ http: { scheme: "https", port: 443 }, tcp: { port: 443 } })).toEqual([
      "HTTP assumed https, port 443",
      "TCP assumed port 443",
    ]);
    expect(describeAssumed(null)).toEqual([]);
  });
});

describe("summaryMedian", () => {
  it("quotes the last hop's RTT for traceroute, not the task duration", () => {
    const hops = (last: number[]) => ({ hops: [{ ttl: 1, rtts_ms: [1, 1, 1] }, { ttl: 2, rtts_ms: last }], reached: true });
    const rs = [
      result({ check_type: "traceroute", duration_ms: 1200, data: hops([10, 12, 14]) }),
      result({ check_type: "traceroute", duration_ms: 1300, data: hops([40, null as unknown as number, 42]) }),
      result({ check_type: "traceroute", duration_ms: 1400, data: hops([120, 120, 120]) }),
    ];
    const s = { ok: 3, failed: 0, pending: 0, total: 3, median_ms: 1300 };
    expect(summaryMedian("traceroute", rs, s)).toEqual({ value: 41, label: "median RTT to the last hop" });
    expect(summaryMedian("tcp", rs, s)).toEqual({ value: 1300, label: "median" });
  });
});
