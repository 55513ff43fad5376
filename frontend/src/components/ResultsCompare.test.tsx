import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AGENTS, check, HTTP_DATA, result } from "../test/utils";
import { CompareCharts } from "./CompareCharts";
import { ResultsTable } from "./ResultsTable";

const [fra, vir, sgp] = AGENTS;
const http = (total: number) => ({ ...HTTP_DATA, timings_ms: { dns: 1, connect: total / 4, tls: total / 4, ttfb: total / 4, download: total / 4 - 1, total } });
const ping = (rtts: number[]) => ({ address: "192.0.2.10", rtts_ms: rtts, rtt_ms: { min: Math.min(...rtts), avg: rtts.reduce((a, b) => a + b) / rtts.length, max: Math.max(...rtts) }, loss_pct: 0 });

const compared = check({
  check_types: ["http", "ping"],
  results: [
    result({ agent: fra, check_type: "http", address: "192.0.2.10", data: http(26) }),
    result({ agent: vir, check_type: "http", address: "192.0.2.10", data: http(242) }),
    result({ agent: sgp, check_type: "http", status: "failed", success: false, data: null, error: { kind: "timeout", message: "no answer" } }),
    result({ agent: fra, check_type: "ping", data: ping([10, 12, 14]) }),
    result({ agent: vir, check_type: "ping", data: ping([90, 100, 110]) }),
  ],
});

function mockViewport(narrow: boolean) {
  vi.stubGlobal("matchMedia", (query: string) => ({ matches: narrow, media: query, addEventListener: () => {}, removeEventListener: () => {} }));
}

afterEach(() => vi.unstubAllGlobals());

describe("comparing agents", () => {
  it("sorts by a type's latency, fastest first, failures last", async () => {
    const user = userEvent.setup();
    render(<ResultsTable check={compared} />);
    const names = () => screen.getAllByTestId(/^result-row-/).map((r) => r.dataset.agentName);
    expect(names()).toEqual(["Frankfurt", "Singapore", "Virginia"]);
    await user.selectOptions(screen.getByTestId("sort-by"), "latency:http");
    expect(names()).toEqual(["Frankfurt", "Virginia", "Singapore"]);
  });

  it("shows the resolved address and ping's min / avg / max", () => {
    render(<ResultsTable check={compared} />);
    const row = screen.getByTestId(`result-row-${vir.id}`);
    expect(within(row).getByTestId("agent-address")).toHaveTextContent("192.0.2.10");
    expect(within(row).getByTestId("ping-min-avg-max")).toHaveTextContent("90 ms / 100 ms / 110 ms");
  });

  it("expands every finished cell with all waterfalls on one scale", async () => {
    const user = userEvent.setup();
    render(<ResultsTable check={compared} />);
    await user.click(screen.getByTestId("expand-all"));
    expect(screen.getAllByTestId("cell-detail")).toHaveLength(5); // 2 http ok + 1 failed + 2 ping
    const scales = screen.getAllByTestId("waterfall").map((w) => w.dataset.scaleMs);
    expect(scales).toEqual(["242", "242"]);
    const charts = screen.getAllByTestId("rtt-chart").map((c) => c.dataset.maxMs);
    expect(charts).toEqual(["110", "110"]);
    await user.click(screen.getByTestId("expand-all"));
    expect(screen.queryAllByTestId("cell-detail")).toHaveLength(0);
  });

  it("draws side-by-side waterfalls and RTT charts to one scale", () => {
    render(<CompareCharts check={compared} />);
    const fast = screen.getByTestId(`compare-waterfall-${fra.id}`);
    const slow = screen.getByTestId(`compare-waterfall-${vir.id}`);
    expect(fast.dataset.scaleMs).toBe(slow.dataset.scaleMs);
    expect([fast.dataset.totalMs, slow.dataset.totalMs]).toEqual(["26", "242"]);
    expect(within(screen.getByTestId("compare-ping")).getAllByTestId("rtt-chart").map((c) => c.dataset.maxMs)).toEqual(["110", "110"]);
  });
});

describe("phone layout", () => {
  it("shows one card per agent with every verdict, and details inside the card", async () => {
    mockViewport(true);
    const user = userEvent.setup();
    render(<ResultsTable check={compared} />);
    expect(screen.getByTestId("results-view")).toHaveAttribute("data-layout", "cards");
    expect(screen.queryByTestId("results-table")).not.toBeInTheDocument();
    const cards = screen.getAllByTestId(/^result-row-/);
    expect(cards).toHaveLength(3);
    expect(within(cards[1]).getByTestId(`result-cell-${sgp.id}-http`)).toHaveAttribute("data-status", "failed");
    await user.click(within(cards[0]).getByTestId(`result-cell-${fra.id}-http`));
    expect(within(cards[0]).getByTestId("cell-detail")).toBeInTheDocument();
  });

  it("is a table on a wide screen", () => {
    mockViewport(false);
    render(<ResultsTable check={compared} />);
    expect(screen.getByTestId("results-table")).toBeInTheDocument();
  });
});
