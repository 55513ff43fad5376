import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { TaskResult } from "../../api/types";
import { ResultDetail } from "./Details";
import { MtrHopChart, type MtrHop } from "./MtrDetail";

const hop = (ttl: number, address: string | null, rtts: Array<number | null>): MtrHop => {
  const values = rtts.filter((v): v is number => v !== null);
  const avg = values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
  return {
    ttl,
    address,
    hostname: null,
    sent: rtts.length,
    received: values.length,
    loss_pct: (100 * (rtts.length - values.length)) / rtts.length,
    rtt_ms: values.length
      ? { last: values[values.length - 1], min: Math.min(...values), avg, max: Math.max(...values), stddev: 1 }
      : { last: null, min: null, avg: null, max: null, stddev: null },
    jitter_ms: { min: 0.5, avg: 2, max: 4 },
    rtts_ms: rtts,
  };
};

const hops = [hop(1, null, [null, null]), hop(2, "198.18.1.2", [20, 30]), hop(3, "198.18.2.2", [40, null])];

function result(data: Record<string, unknown>): TaskResult {
  return {
    task_id: "t1",
    agent: { id: "a1", name: "sin-1", location: "Singapore" },
    check_type: "mtr",
    status: "completed",
    success: true,
    data,
    error: null,
    duration_ms: 3000,
    started_at: null,
    completed_at: null,
  };
}

describe("MTR detail", () => {
  it("draws one bar per hop from best to worst, with silent hops marked and loss shown", () => {
    render(<MtrHopChart hops={hops} />);
    const chart = screen.getByTestId("mtr-chart");
    expect(chart.dataset.maxMs).toBe("40");
    const bars = screen.getAllByTestId("mtr-bar");
    expect(bars.map((b) => b.dataset.ttl)).toEqual(["1", "2", "3"]);
    expect(bars.map((b) => b.dataset.lost)).toEqual(["true", "false", "false"]);
    expect(bars[0]).toHaveTextContent("100% loss");
    expect(bars[2]).toHaveTextContent("50% loss");
    expect(within(bars[1]).getByText(/best 20 ms, avg 25 ms, worst 30 ms/)).toBeInTheDocument();
  });

  it("lists every hop in mtr's report columns", () => {
    render(<ResultDetail r={result({ address: "198.18.2.2", protocol: "tcp", port: 443, rounds_done: 2, reached: true, hops })} />);
    expect(screen.getByTestId("mtr-detail")).toHaveTextContent("TCP port 443 to 198.18.2.2, 2 rounds, reached");
    const rows = screen.getAllByTestId("mtr-hop");
    expect(rows).toHaveLength(3);
    expect(rows[0]).toHaveTextContent("???");
    const cells = within(rows[1]).getAllByRole("cell").map((c) => c.textContent);
    // #, host, loss, sent, last, avg, best, worst, stdev, jitter
    expect(cells).toEqual(["2", "198.18.1.2", "0%", "2", "30 ms", "25 ms", "20 ms", "30 ms", "1 ms", "2 ms"]);
  });
});
