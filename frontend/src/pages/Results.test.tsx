import { act, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/client";
import * as endpoints from "../api/endpoints";
import { AGENTS, check, HTTP_DATA, renderRoute, result } from "../test/utils";
import Results, { rerunRequest } from "./Results";

vi.mock("../api/endpoints", () => ({
  createCheck: vi.fn(),
  listAgents: vi.fn(),
  getCheck: vi.fn(),
  listChecks: vi.fn(),
  getAgentStats: vi.fn(),
}));

const getCheck = vi.mocked(endpoints.getCheck);
const createCheck = vi.mocked(endpoints.createCheck);
const listAgents = vi.mocked(endpoints.listAgents);

function renderResults(id = "c1") {
  return renderRoute(<Results />, { path: "/results/:id", route: `/results/${id}` });
}

beforeEach(() => {
  vi.clearAllMocks();
  listAgents.mockResolvedValue({ items: [], next_cursor: null });
});

describe("Results page", () => {
  it("shows the summary line per type from the API summary", async () => {
    getCheck.mockResolvedValue(
      check({
        check_types: ["http", "tcp"],
        summary: {
          http: { ok: 3, failed: 0, pending: 0, total: 3, median_ms: 42 },
          tcp: { ok: 2, failed: 1, pending: 0, total: 3, median_ms: 1.5 },
        },
        results: AGENTS.map((a) => result({ agent: a, check_type: "http", data: HTTP_DATA })),
      }),
    );
    renderResults();
    expect(await screen.findByTestId("summary-http")).toHaveTextContent("HTTP OK from 3/3 agents, median 42 ms");
    expect(screen.getByTestId("summary-tcp")).toHaveTextContent("TCP OK from 2/3 agents, failed on 1, median 1.5 ms");
    expect(screen.getAllByTestId(/^result-row-/)).toHaveLength(3);
    expect(screen.queryByTestId("polling-indicator")).not.toBeInTheDocument();
  });

  it("flags certificates that differ between agents, naming who saw which", async () => {
    const tls = (fp: string) => ({ ...HTTP_DATA, tls: { ...HTTP_DATA.tls, fingerprint_sha256: fp } });
    getCheck.mockResolvedValue(
      check({
        results: AGENTS.map((a, i) => result({ task_id: `t${i}`, agent: a, check_type: "http", data: tls(i === 2 ? "BB:02:03:04:05:06" : "AA:01:02:03:04:05") })),
      }),
    );
    renderResults();
    const flag = await screen.findByTestId("certificates-differ");
    expect(flag).toHaveTextContent("Certificates differ between agents");
    const leaves = screen.getAllByTestId("certificates-leaf");
    expect(leaves[0]).toHaveTextContent("AA:01:02:03…");
    expect(leaves[0]).toHaveTextContent("Frankfurt, Virginia");
    expect(leaves[1]).toHaveTextContent("BB:02:03:04…");
    expect(leaves[1]).toHaveTextContent("Singapore");
  });

  it("shows no certificate flag when every agent saw the same leaf", async () => {
    const data = { ...HTTP_DATA, tls: { ...HTTP_DATA.tls, fingerprint_sha256: "AA:01" } };
    getCheck.mockResolvedValue(check({ results: AGENTS.map((a, i) => result({ task_id: `t${i}`, agent: a, check_type: "http", data })) }));
    renderResults();
    await screen.findAllByTestId(/^result-row-/);
    expect(screen.queryByTestId("certificates-differ")).not.toBeInTheDocument();
  });

  it("quotes the median RTT for ping", async () => {
    getCheck.mockResolvedValue(
      check({
        check_types: ["ping"],
        summary: { ping: { ok: 3, failed: 0, pending: 0, total: 3, median_ms: 1550 } },
        results: AGENTS.map((a, i) => result({ agent: a, check_type: "ping", data: { rtt_ms: { avg: [10, 41, 121][i] }, loss_pct: 0 } })),
      }),
    );
    renderResults();
    expect(await screen.findByTestId("summary-ping")).toHaveTextContent("Ping OK from 3/3 agents, median RTT 41 ms");
  });

  it("computes the summary when the API sends none", async () => {
    getCheck.mockResolvedValue(
      check({
        status: "in_progress",
        results: [
          result({ agent: AGENTS[0], check_type: "http", duration_ms: 40 }),
          result({ agent: AGENTS[1], check_type: "http", status: "pending", success: null }),
        ],
      }),
    );
    renderResults();
    expect(await screen.findByTestId("summary-http")).toHaveTextContent("HTTP: 1/2 done, OK from 1, 1 pending, median 40 ms");
    expect(screen.getByTestId("polling-indicator")).toBeInTheDocument();
  });

  it("polls every 2 s while the check runs and stops once it is completed", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const running = check({ status: "in_progress", results: [result({ check_type: "http", status: "in_progress", success: null, data: null })] });
      const done = check({ status: "completed", results: [result({ check_type: "http", data: HTTP_DATA })] });
      getCheck.mockResolvedValueOnce(running).mockResolvedValue(done);
      renderResults();
      expect(await screen.findByTestId("result-cell-a1-http")).toHaveAttribute("data-status", "running");
      expect(getCheck).toHaveBeenCalledTimes(1);
      // not sooner than 2 s (a shorter interval would also end with two calls below) ...
      await act(() => vi.advanceTimersByTimeAsync(1500));
      expect(getCheck).toHaveBeenCalledTimes(1);
      // ... and by 2 s the next poll has gone out
      await act(() => vi.advanceTimersByTimeAsync(500));
      await waitFor(() => expect(screen.getByTestId("result-cell-a1-http")).toHaveAttribute("data-status", "ok"));
      expect(getCheck).toHaveBeenCalledTimes(2);
      expect(screen.getByTestId("check-status")).toHaveAttribute("data-status", "completed");
      // a terminal check is not fetched again
      await act(() => vi.advanceTimersByTimeAsync(20000));
      expect(getCheck).toHaveBeenCalledTimes(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it("runs the same check again and navigates to the new id", async () => {
    const user = userEvent.setup();
    const c = check({ check_types: ["http", "tcp"], options: { tcp: { port: 8080 } }, results: [result({ check_type: "http", data: HTTP_DATA })] });
    getCheck.mockResolvedValue(c);
    createCheck.mockResolvedValue({ check_id: "c2", status: "pending" });
    const { router } = renderResults();
    await user.click(await screen.findByTestId("run-again"));
    await waitFor(() => expect(router.state.location.pathname).toBe("/results/c2"));
    expect(createCheck).toHaveBeenCalledWith({ target: "https://example.com", checks: ["http", "tcp"], options: { tcp: { port: 8080 } } });
    expect(rerunRequest(check({ options: null }))).toEqual({ target: "https://example.com", checks: ["http"] });
  });

  it("runs again on agents selected the same way as the first run", () => {
    const c = check({ options: null, selection: { agents: null, locations: ["Singapore"], limit: 2, chosen: ["a1"] } });
    expect(rerunRequest(c)).toEqual({ target: "https://example.com", checks: ["http"], locations: ["Singapore"], limit: 2 });
    const picked = check({ options: null, selection: { agents: ["a1", "a2"], locations: null, limit: null, chosen: ["a1"] } });
    expect(rerunRequest(picked).agents).toEqual(["a1", "a2"]);
  });

  it("counts down a 429 on Run again, as the form does", async () => {
    const user = userEvent.setup();
    getCheck.mockResolvedValue(check({ results: [result({ check_type: "http", data: HTTP_DATA })] }));
    createCheck.mockRejectedValue(new ApiError({ status: 429, code: "rate_limited", message: "Too many", retryAfter: 30 }));
    renderResults();
    await user.click(await screen.findByTestId("run-again"));
    expect(await screen.findByTestId("rate-limit-error")).toHaveTextContent(/run another check in/);
    expect(screen.getByTestId("run-again")).toBeDisabled();
    expect(screen.queryByTestId("run-again-error")).not.toBeInTheDocument();
  });

  it("offers the API request as curl, the JSON and a CSV, and what the check assumed", async () => {
    getCheck.mockResolvedValue(
      check({
        target: "straße.de",
        target_info: { host: "xn--strae-oqa.de", host_unicode: "straße.de", is_ip: false, scheme: null, port: null },
        assumed: { http: { scheme: "https", port: 443 } },
        options: { http: { timeout: 1, method: "GET" } },
        results: [result({ check_type: "http", data: HTTP_DATA })],
      }),
    );
    renderResults();
    expect(await screen.findByTestId("json-link")).toHaveAttribute("href", expect.stringMatching(/\/api\/checks\/c1$/));
    expect(screen.getByTestId("copy-curl")).toBeInTheDocument();
    expect(screen.getByTestId("download-csv")).toBeInTheDocument();
    expect(screen.getByTestId("check-options")).toHaveTextContent("HTTP timeout 1 s");
    expect(screen.getByTestId("check-assumed")).toHaveTextContent("HTTP assumed https, port 443");
    expect(screen.getByTestId("target-alabel")).toHaveTextContent("straße.de is checked as xn--strae-oqa.de");
    expect(screen.getByTestId("compare-card")).toBeInTheDocument();
  });

  it("shows 'not found' for an unknown id", async () => {
    getCheck.mockRejectedValue(new ApiError({ status: 404, message: "no such check" }));
    renderResults("nope");
    expect(await screen.findByTestId("results-not-found")).toHaveTextContent("Check not found");
  });

  it("shows an error state when the API fails", async () => {
    getCheck.mockRejectedValue(new ApiError({ status: 503, message: "database unavailable" }));
    renderResults();
    expect(await screen.findByTestId("results-error", {}, { timeout: 4000 })).toHaveTextContent("database unavailable");
  });

  it("shows an empty state for a check no agent could run", async () => {
    getCheck.mockResolvedValue(check({ status: "failed", results: [], error: "no eligible agent: no agent is online" }));
    renderResults();
    expect(await screen.findByTestId("results-empty")).toHaveTextContent("could not run: no eligible agent: no agent is online");
  });
});

describe("Results page with live results", () => {
  it("says live, and fills a cell and the verdict line when a result is pushed", async () => {
    const { MockWebSocket } = await import("../test/mockWebSocket");
    const { configureLive } = await import("../lib/liveCheck");
    MockWebSocket.reset();
    vi.stubGlobal("WebSocket", MockWebSocket);
    configureLive("ws://ws.example");
    try {
      const waiting = (a: (typeof AGENTS)[number]) =>
        result({ task_id: `task-${a.id}`, agent: a, check_type: "http", status: "pending", success: null, data: null });
      const snapshot = check({ status: "in_progress", completed_at: null, results: AGENTS.map(waiting) });
      getCheck.mockResolvedValue(snapshot);
      renderResults();
      expect(await screen.findByTestId("polling-indicator")).toHaveTextContent("polling every 2 s");
      const ws = MockWebSocket.last();
      act(() => {
        ws.open();
        ws.receive({ type: "snapshot", check: snapshot });
      });
      expect(await screen.findByTestId("live-indicator")).toHaveTextContent("live");
      const cell = screen.getByTestId("result-cell-a1-http");
      expect(cell).toHaveAttribute("data-status", "pending");
      act(() => ws.receive({ type: "result", result: result({ task_id: "task-a1", agent: AGENTS[0], check_type: "http", data: HTTP_DATA, duration_ms: 72 }) }));
      await waitFor(() => expect(screen.getByTestId("result-cell-a1-http")).toHaveAttribute("data-status", "ok"));
      expect(screen.getByTestId("summary-http")).toHaveTextContent("1/3");
    } finally {
      vi.unstubAllGlobals();
      configureLive(null);
    }
  });
});
