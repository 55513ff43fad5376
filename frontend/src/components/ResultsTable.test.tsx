import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { AGENTS, check, HTTP_DATA, result } from "../test/utils";
import { ResultsTable } from "./ResultsTable";

const [fra, vir, sgp] = AGENTS;

const full = check({
  check_types: ["http", "ping", "dns", "tcp", "traceroute"],
  results: [
    result({ agent: fra, check_type: "http", data: HTTP_DATA, duration_ms: 72 }),
    result({ agent: fra, check_type: "ping", data: { rtt_ms: { min: 1, avg: 2.5, max: 4, stddev: 1 }, loss_pct: 0, rtts_ms: [1, 2, null, 4], packets_sent: 4, packets_received: 3 } }),
    result({ agent: fra, check_type: "dns", data: { record_type: "A", answers: [{ name: "example.com", type: "A", ttl: 60, value: "192.0.2.10" }] } }),
    result({ agent: fra, check_type: "tcp", data: { address: "192.0.2.10", port: 443, connect_ms: 12.3 } }),
    result({
      agent: fra,
      check_type: "traceroute",
      data: {
        reached: true,
        address: "192.0.2.10",
        hops: [
          { ttl: 1, address: "10.0.0.1", hostname: "gw", rtts_ms: [1, 1.1, 0.9], loss_pct: 0 },
          { ttl: 2, address: null, hostname: null, rtts_ms: [null, null, null], loss_pct: 100 },
          { ttl: 3, address: "192.0.2.10", hostname: null, rtts_ms: [5, 5, 5], loss_pct: 0 },
        ],
      },
    }),
    result({ agent: vir, check_type: "http", status: "in_progress", success: null, data: null }),
    result({ agent: vir, check_type: "ping", status: "pending", success: null, data: null }),
    result({
      agent: sgp,
      check_type: "http",
      status: "failed",
      success: false,
      data: null,
      error: { kind: "timeout", message: "no answer within 15 s" },
    }),
  ],
});

function cell(agentId: string, type: string) {
  return screen.getByTestId(`result-cell-${agentId}-${type}`);
}

describe("ResultsTable", () => {
  it("shows one row per agent, sorted by name, with online state", () => {
    render(<ResultsTable check={full} agents={[{ ...fra, status: "online", last_heartbeat: null, version: null, capabilities: [], current_tasks: 0 }]} />);
    const rows = screen.getAllByTestId(/^result-row-/);
    expect(rows.map((r) => r.getAttribute("data-agent-name"))).toEqual(["Frankfurt", "Singapore", "Virginia"]);
    expect(within(rows[0]).getByTestId("online-dot")).toHaveAttribute("data-status", "online");
    expect(within(rows[1]).getByTestId("online-dot")).toHaveAttribute("data-status", "unknown");
  });

  it("shows each check type's headline number", () => {
    render(<ResultsTable check={full} />);
    expect(within(cell("a1", "http")).getByTestId("cell-headline")).toHaveTextContent("200 · 72 ms");
    expect(within(cell("a1", "ping")).getByTestId("cell-headline")).toHaveTextContent("2.5 ms avg · 0% loss");
    expect(within(cell("a1", "dns")).getByTestId("cell-headline")).toHaveTextContent("1 answer: 192.0.2.10");
    expect(within(cell("a1", "tcp")).getByTestId("cell-headline")).toHaveTextContent("12 ms connect");
    expect(within(cell("a1", "traceroute")).getByTestId("cell-headline")).toHaveTextContent("3 hops");
    for (const t of ["http", "ping", "dns", "tcp", "traceroute"]) {
      expect(cell("a1", t)).toHaveAttribute("data-status", "ok");
    }
  });

  it("shows pending, running and failed cells", () => {
    render(<ResultsTable check={full} />);
    expect(cell("a2", "http")).toHaveAttribute("data-status", "running");
    expect(cell("a2", "http")).toBeDisabled();
    expect(cell("a2", "ping")).toHaveAttribute("data-status", "pending");
    expect(cell("a3", "http")).toHaveAttribute("data-status", "failed");
    expect(within(cell("a3", "http")).getByTestId("status-badge")).toHaveTextContent("timeout");
    expect(within(cell("a3", "http")).getByTestId("cell-headline")).toHaveTextContent("no answer within 15 s");
  });

  it("expands an HTTP cell into waterfall, redirects, TLS and headers", async () => {
    const user = userEvent.setup();
    render(<ResultsTable check={full} />);
    expect(screen.queryByTestId("cell-detail")).not.toBeInTheDocument();
    await user.click(cell("a1", "http"));
    const detail = screen.getByTestId("cell-detail");
    expect(within(detail).getByTestId("waterfall")).toBeInTheDocument();
    expect(within(detail).getAllByTestId(/^waterfall-bar-/)).toHaveLength(5);
    expect(within(detail).getByTestId("redirect-chain")).toHaveTextContent("http://example.com/");
    expect(within(detail).getByTestId("tls-days-left")).toHaveTextContent("90");
    expect(within(detail).getByTestId("tls-details")).toHaveTextContent("TLSv1.3");
    expect(within(detail).getByTestId("http-headers")).toHaveTextContent("content-type");
    // clicking again collapses
    await user.click(cell("a1", "http"));
    expect(screen.queryByTestId("cell-detail")).not.toBeInTheDocument();
  });

  it("expands ping, DNS and traceroute cells into their details", async () => {
    const user = userEvent.setup();
    render(<ResultsTable check={full} />);
    await user.click(cell("a1", "ping"));
    expect(screen.getByTestId("rtt-chart")).toBeInTheDocument();
    const bars = screen.getAllByTestId("rtt-bar");
    expect(bars).toHaveLength(4);
    expect(bars[2]).toHaveAttribute("data-lost", "true");
    await user.click(cell("a1", "dns"));
    expect(screen.getAllByTestId("dns-answer")).toHaveLength(1);
    await user.click(cell("a1", "traceroute"));
    expect(screen.getAllByTestId("traceroute-hop")).toHaveLength(3);
  });

  it("expands a failed cell into its error", async () => {
    const user = userEvent.setup();
    render(<ResultsTable check={full} />);
    await user.click(cell("a3", "http"));
    expect(screen.getByTestId("result-error")).toHaveTextContent("timeout: no answer within 15 s");
  });
});
