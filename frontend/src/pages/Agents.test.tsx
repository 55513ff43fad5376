import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/client";
import * as endpoints from "../api/endpoints";
import { renderRoute } from "../test/utils";
import type { AgentStats } from "../api/types";
import Agents from "./Agents";

vi.mock("../api/endpoints", () => ({
  createCheck: vi.fn(),
  listAgents: vi.fn(),
  getCheck: vi.fn(),
  listChecks: vi.fn(),
  getAgentStats: vi.fn(),
  retireAgent: vi.fn(),
}));

const listAgents = vi.mocked(endpoints.listAgents);
const getAgentStats = vi.mocked(endpoints.getAgentStats);
const retireAgent = vi.mocked(endpoints.retireAgent);

beforeEach(() => {
  vi.clearAllMocks();
  sessionStorage.clear();
});

const FRA = { id: "a1", name: "Frankfurt", location: "eu-central", status: "online" as const, last_heartbeat: null, version: "0.1.0", capabilities: ["http"], current_tasks: 0 };

describe("Agents page", () => {
  it("lists agents with status, heartbeat, capabilities and stats", async () => {
    const recent = new Date(Date.now() - 5000).toISOString();
    listAgents.mockResolvedValue({
      items: [
        { id: "a2", name: "Virginia", location: "us-east", status: "offline", last_heartbeat: "2020-01-01T00:00:00Z", version: "0.1.0", capabilities: ["http"], current_tasks: 0 },
        { id: "a1", name: "Frankfurt", location: "eu-central", status: "online", last_heartbeat: recent, version: "0.1.0", capabilities: ["http", "ping"], current_tasks: 2 },
      ],
      next_cursor: null,
    });
    getAgentStats.mockImplementation(async (id): Promise<AgentStats> => ({
      agent_id: id,
      window_hours: 24,
      stats:
        id === "a1"
          ? {
              http: { count: 10, success_rate: 0.9, avg_ms: 42, p95_ms: 120, latency_avg_ms: 23, latency_p95_ms: 41, target_failures: 0, agent_failures: 1 },
              ping: { count: 20, success_rate: 0.35, avg_ms: 1530, p95_ms: 1540, latency_avg_ms: 10.4, latency_p95_ms: 11.2, target_failures: 13, agent_failures: 0, failures_by_kind: { refused: 13 } },
              dns: { count: 0, success_rate: null, avg_ms: null, p95_ms: null },
            }
          : { http: { count: 0, success_rate: null, avg_ms: null, p95_ms: null } },
    }));
    renderRoute(<Agents />);
    const cards = await screen.findAllByTestId(/^agent-card-/);
    expect(cards.map((c) => c.getAttribute("data-agent-name"))).toEqual(["Frankfurt", "Virginia"]);
    expect(screen.getByTestId("agents-online-count")).toHaveTextContent("1 of 2 online");
    const fra = cards[0];
    expect(within(fra).getByTestId("agent-status")).toHaveTextContent("online");
    expect(within(fra).getByTestId("agent-heartbeat")).toHaveTextContent(/s ago|just now/);
    expect(fra).toHaveTextContent("Ping");
    const stats = await within(fra).findByTestId("agent-stats-http");
    expect(stats).toHaveTextContent("10");
    expect(stats).toHaveTextContent("90%");
    // The headline latency, not the task duration.
    expect(within(stats).getByTestId("agent-stats-latency")).toHaveTextContent("23 ms");
    expect(within(stats).getByTestId("agent-stats-latency-p95")).toHaveTextContent("41 ms");
    expect(within(stats).getByTestId("agent-stats-agent-failures")).toHaveTextContent("1");
    const ping = within(fra).getByTestId("agent-stats-ping");
    expect(within(ping).getByTestId("agent-stats-latency")).toHaveTextContent("10 ms");
    expect(ping).not.toHaveTextContent("1.53 s");
    expect(within(ping).getByTestId("agent-stats-target-failures")).toHaveTextContent("13");
    expect(within(ping).getByTestId("agent-stats-agent-failures")).toHaveTextContent("0");
    expect(within(fra).queryByTestId("agent-stats-dns")).not.toBeInTheDocument();
    expect(await within(cards[1]).findByTestId("agent-stats-empty")).toBeInTheDocument();
  });

  it("has an empty state", async () => {
    listAgents.mockResolvedValue({ items: [], next_cursor: null });
    renderRoute(<Agents />);
    expect(await screen.findByTestId("agents-empty")).toBeInTheDocument();
  });

  it("has an error state", async () => {
    listAgents.mockRejectedValue(new ApiError({ status: 500, message: "boom" }));
    renderRoute(<Agents />);
    expect(await screen.findByTestId("agents-error")).toHaveTextContent("boom");
  });

  it("retires an agent with the admin token, asked once and kept in sessionStorage", async () => {
    listAgents.mockResolvedValue({ items: [FRA], next_cursor: null });
    getAgentStats.mockResolvedValue({ agent_id: "a1", window_hours: 24, stats: {} });
    retireAgent.mockResolvedValue(undefined);
    renderRoute(<Agents />);
    fireEvent.click(await screen.findByTestId("agent-retire"));
    expect(screen.getByTestId("agent-retire-confirm")).toBeDisabled();
    fireEvent.change(screen.getByTestId("agent-retire-token"), { target: { value: "s3cret" } });
    fireEvent.click(screen.getByTestId("agent-retire-confirm"));
    await waitFor(() => expect(retireAgent).toHaveBeenCalledWith("a1", "s3cret"));
    await waitFor(() => expect(screen.queryByTestId("agent-retire-form")).not.toBeInTheDocument());
    expect(sessionStorage.getItem("hc.adminToken")).toBe("s3cret");
    expect(localStorage.getItem("hc.adminToken")).toBeNull();
    // The next time, the stored token is used without asking.
    fireEvent.click(await screen.findByTestId("agent-retire"));
    expect(screen.queryByTestId("agent-retire-token")).not.toBeInTheDocument();
    fireEvent.click(screen.getByTestId("agent-retire-confirm"));
    await waitFor(() => expect(retireAgent).toHaveBeenCalledTimes(2));
  });

  it("forgets a refused admin token and says why", async () => {
    listAgents.mockResolvedValue({ items: [FRA], next_cursor: null });
    getAgentStats.mockResolvedValue({ agent_id: "a1", window_hours: 24, stats: {} });
    sessionStorage.setItem("hc.adminToken", "old");
    retireAgent.mockRejectedValue(new ApiError({ status: 403, code: "forbidden", message: "admin token is not valid" }));
    renderRoute(<Agents />);
    fireEvent.click(await screen.findByTestId("agent-retire"));
    fireEvent.click(screen.getByTestId("agent-retire-confirm"));
    expect(await screen.findByTestId("agent-retire-error")).toHaveTextContent("admin token is not valid");
    expect(sessionStorage.getItem("hc.adminToken")).toBeNull();
    expect(screen.getByTestId("agent-retire-token")).toBeInTheDocument();
  });
});
