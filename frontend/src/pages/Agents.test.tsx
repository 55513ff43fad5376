import { screen, within } from "@testing-library/react";
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
}));

const listAgents = vi.mocked(endpoints.listAgents);
const getAgentStats = vi.mocked(endpoints.getAgentStats);

beforeEach(() => vi.clearAllMocks());

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
          ? { http: { count: 10, success_rate: 0.9, avg_ms: 42, p95_ms: 120 }, dns: { count: 0, success_rate: null, avg_ms: null, p95_ms: null } }
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
    expect(stats).toHaveTextContent("42 ms");
    expect(stats).toHaveTextContent("120 ms");
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
});
