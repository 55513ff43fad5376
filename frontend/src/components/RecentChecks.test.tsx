import { screen, within } from "@testing-library/react";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/client";
import * as endpoints from "../api/endpoints";
import { setAppConfig } from "../config";
import { checkVerdict } from "../lib/format";
import { forgetMyChecks, myChecks, rememberCheck } from "../lib/myChecks";
import Dashboard from "../pages/Dashboard";
import { check, renderRoute } from "../test/utils";
import { MyChecks, RecentChecks } from "./RecentChecks";

vi.mock("../api/endpoints", () => ({
  createCheck: vi.fn(),
  listAgents: vi.fn(),
  getCheck: vi.fn(),
  listChecks: vi.fn(),
  getAgentStats: vi.fn(),
}));

const s = (ok: number, failed: number, pending = 0) => ({ ok, failed, pending, total: ok + failed + pending, median_ms: null });

beforeEach(() => {
  vi.clearAllMocks();
  forgetMyChecks();
  setAppConfig({ publicList: true });
  vi.mocked(endpoints.listAgents).mockResolvedValue({ items: [], next_cursor: null });
  vi.mocked(endpoints.listChecks).mockResolvedValue({ items: [], next_cursor: null });
});

describe("checkVerdict", () => {
  it("reads the summary, not the status", () => {
    expect(checkVerdict({ status: "completed", summary: { http: s(0, 3), ping: s(0, 3) } })).toEqual({ verdict: "failed", label: "failed" });
    expect(checkVerdict({ status: "completed", summary: { http: s(3, 0) } })).toEqual({ verdict: "ok", label: "OK" });
    expect(checkVerdict({ status: "completed", summary: { http: s(2, 1), tcp: s(3, 0) } })).toEqual({ verdict: "partial", label: "5/6 OK" });
    expect(checkVerdict({ status: "in_progress", summary: { http: s(1, 0, 2) } }).label).toBe("running 1/3");
    expect(checkVerdict({ status: "failed", summary: { http: s(0, 0) } })).toEqual({ verdict: "failed", label: "could not run" });
  });
});

describe("RecentChecks", () => {
  it("paints a check whose every task failed red", async () => {
    vi.mocked(endpoints.listChecks).mockResolvedValue({
      items: [
        { check_id: "c1", target: "down.example", check_types: ["http"], status: "completed", created_at: "2025-01-01T00:00:00Z", summary: { http: s(0, 3) } },
        { check_id: "c2", target: "up.example", check_types: ["http"], status: "completed", created_at: "2025-01-01T00:00:00Z", summary: { http: s(3, 0) } },
      ],
      next_cursor: null,
    });
    renderRoute(<RecentChecks />);
    const rows = await screen.findAllByTestId("recent-check");
    expect(rows.map((r) => r.dataset.verdict)).toEqual(["failed", "ok"]);
    expect(within(rows[0]).getByTestId("recent-check-verdict")).toHaveAttribute("data-status", "failed");
  });
});

describe("MyChecks", () => {
  it("lists the checks made in this browser with their verdicts, and notes a deleted one", async () => {
    rememberCheck({ id: "old", target: "gone.example", created_at: "2025-01-01T00:00:00Z" });
    rememberCheck({ id: "c1", target: "example.com", created_at: "2025-01-01T00:00:00Z" });
    vi.mocked(endpoints.getCheck).mockImplementation(async (id) => {
      if (id === "old") throw new ApiError({ status: 404, message: "no such check" });
      return check({ check_id: id, target: "example.com", summary: { http: s(0, 2) } });
    });
    renderRoute(<MyChecks />);
    await screen.findByText("deleted");
    const rows = await screen.findAllByTestId("recent-check");
    expect(rows[0]).toHaveTextContent("example.com");
    await screen.findByTestId("recent-check-verdict");
    expect(rows[0].dataset.verdict).toBe("failed");
    expect(JSON.parse(window.localStorage.getItem("hostchecker.myChecks")!).map((c: { id: string }) => c.id)).toEqual(["c1", "old"]);
  });

  it("keeps one entry per id, newest first", () => {
    rememberCheck({ id: "a", target: "a", created_at: "" });
    rememberCheck({ id: "b", target: "b", created_at: "" });
    rememberCheck({ id: "a", target: "a", created_at: "" });
    expect(myChecks().map((c) => c.id)).toEqual(["a", "b"]);
  });
});

describe("Dashboard", () => {
  it("shows everyone's checks only where the stage makes the list public", async () => {
    setAppConfig({ publicList: false });
    renderRoute(<Dashboard />);
    expect(await screen.findByTestId("my-checks-empty")).toBeInTheDocument();
    expect(screen.queryByTestId("recent-checks-card")).not.toBeInTheDocument();
    expect(endpoints.listChecks).not.toHaveBeenCalled();
  });
});
