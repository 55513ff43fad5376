import { act, renderHook, waitFor } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import * as endpoints from "../api/endpoints";
import type { CheckType } from "../api/types";
import { applyLiveMessage, backoffMs, configureLive, parseLiveMessage, socketUrl } from "../lib/liveCheck";
import { MockWebSocket } from "../test/mockWebSocket";
import { check, result } from "../test/utils";
import { useCheck } from "./useCheck";

vi.mock("../api/endpoints", () => ({ getCheck: vi.fn() }));
const getCheck = vi.mocked(endpoints.getCheck);

function wrapper() {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return ({ children }: { children: ReactNode }) => <QueryClientProvider client={client}>{children}</QueryClientProvider>;
}

const pending = (task_id: string, check_type: CheckType = "http") =>
  result({ task_id, check_type, status: "pending", success: null, data: null, duration_ms: null });

const running = () =>
  check({ status: "pending", completed_at: null, results: [pending("t-a"), pending("t-b")] });

beforeEach(() => {
  MockWebSocket.reset();
  vi.stubGlobal("WebSocket", MockWebSocket);
  configureLive("ws://ws.example/");
  getCheck.mockReset();
});

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
  configureLive(null);
});

describe("useCheck over the socket", () => {
  it("subscribes with ?check_id=, asks for the snapshot and goes live on it", async () => {
    getCheck.mockResolvedValue(running());
    const { result: hook } = renderHook(() => useCheck("c1"), { wrapper: wrapper() });
    const ws = MockWebSocket.last();
    expect(ws.url).toBe("ws://ws.example/?check_id=c1");
    expect(hook.current.mode).toBe("polling");
    act(() => ws.open());
    expect(JSON.parse(ws.sent[0])).toEqual({ action: "subscribe" });
    act(() => ws.receive({ type: "snapshot", check: running() }));
    await waitFor(() => expect(hook.current.mode).toBe("live"));
    expect(hook.current.data?.results).toHaveLength(2);
  });

  it("puts a result in its row and updates the summary; a duplicate changes nothing", async () => {
    getCheck.mockResolvedValue(running());
    const { result: hook } = renderHook(() => useCheck("c1"), { wrapper: wrapper() });
    const ws = MockWebSocket.last();
    act(() => {
      ws.open();
      ws.receive({ type: "snapshot", check: running() });
    });
    const done = result({ task_id: "t-a", check_type: "http", duration_ms: 42 });
    act(() => ws.receive({ type: "task", task_id: "t-b", status: "in_progress", agent: done.agent }));
    act(() => ws.receive({ type: "result", result: done }));
    act(() => ws.receive({ type: "result", result: done }));
    await waitFor(() => expect(hook.current.data?.results[0].status).toBe("completed"));
    expect(hook.current.data?.results).toHaveLength(2);
    expect(hook.current.data?.results[1].status).toBe("in_progress");
    expect(hook.current.data?.status).toBe("in_progress");
    expect(hook.current.data?.summary?.http).toMatchObject({ ok: 1, pending: 1, total: 2 });
  });

  it("takes the final status and summary, and does not reconnect after the close", async () => {
    getCheck.mockResolvedValue(running());
    const { result: hook } = renderHook(() => useCheck("c1"), { wrapper: wrapper() });
    const ws = MockWebSocket.last();
    const summary = { http: { ok: 2, failed: 0, pending: 0, total: 2, median_ms: 40 } };
    act(() => {
      ws.open();
      ws.receive({ type: "snapshot", check: running() });
      ws.receive({ type: "status", status: "completed", summary, completed_at: "2025-01-01T00:00:03Z" });
      ws.drop(1000);
    });
    await waitFor(() => expect(hook.current.data?.status).toBe("completed"));
    expect(hook.current.data?.summary).toEqual(summary);
    expect(MockWebSocket.instances).toHaveLength(1);
  });

  it("ignores a frame that is not JSON or of an unknown kind and stays live", async () => {
    getCheck.mockResolvedValue(running());
    const { result: hook } = renderHook(() => useCheck("c1"), { wrapper: wrapper() });
    const ws = MockWebSocket.last();
    act(() => {
      ws.open();
      ws.receive({ type: "snapshot", check: running() });
      ws.receiveRaw("not json");
      ws.receiveRaw('{"type":"heartbeat"}');
    });
    await waitFor(() => expect(hook.current.mode).toBe("live"));
    expect(hook.current.data?.results.map((r) => r.status)).toEqual(["pending", "pending"]);
  });

  it("polls when the socket cannot open and reconnects with backoff; the new snapshot replaces the state", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    getCheck.mockResolvedValue(running());
    const { result: hook } = renderHook(() => useCheck("c1"), { wrapper: wrapper() });
    act(() => MockWebSocket.last().drop(1006));           // never opened
    expect(hook.current.mode).toBe("polling");
    await act(async () => vi.advanceTimersByTime(backoffMs(0)));
    expect(MockWebSocket.instances).toHaveLength(2);
    act(() => MockWebSocket.last().drop(1006));
    await act(async () => vi.advanceTimersByTime(backoffMs(0)));
    expect(MockWebSocket.instances).toHaveLength(2);      // the second wait is longer
    await act(async () => vi.advanceTimersByTime(backoffMs(1)));
    expect(MockWebSocket.instances).toHaveLength(3);
    const fresh = check({ status: "in_progress", completed_at: null, results: [pending("t-z")] });
    act(() => {
      MockWebSocket.last().open();
      MockWebSocket.last().receive({ type: "snapshot", check: fresh });
    });
    await waitFor(() => expect(hook.current.mode).toBe("live"));
    expect(hook.current.data?.results.map((r) => r.task_id)).toEqual(["t-z"]);
  });

  it("falls back to polling when a live socket drops before the final status", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    getCheck.mockResolvedValue(running());
    const { result: hook } = renderHook(() => useCheck("c1"), { wrapper: wrapper() });
    act(() => {
      MockWebSocket.last().open();
      MockWebSocket.last().receive({ type: "snapshot", check: running() });
    });
    await waitFor(() => expect(hook.current.mode).toBe("live"));
    const calls = getCheck.mock.calls.length;
    act(() => MockWebSocket.last().drop(1001));
    expect(hook.current.mode).toBe("polling");
    await act(async () => vi.advanceTimersByTime(2100));
    expect(getCheck.mock.calls.length).toBeGreaterThan(calls);
  });

  it("stops trying on an unknown check (4404) and leaves the 404 to the query", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    getCheck.mockResolvedValue(running());
    renderHook(() => useCheck("c1"), { wrapper: wrapper() });
    act(() => {
      MockWebSocket.last().open();
      MockWebSocket.last().drop(4404);
    });
    await act(async () => vi.advanceTimersByTime(60000));
    expect(MockWebSocket.instances).toHaveLength(1);
  });

  it("without a wsUrl, opens no socket and polls", async () => {
    configureLive(null);
    getCheck.mockResolvedValue(running());
    const { result: hook } = renderHook(() => useCheck("c1"), { wrapper: wrapper() });
    await waitFor(() => expect(hook.current.data).toBeDefined());
    expect(MockWebSocket.instances).toHaveLength(0);
    expect(hook.current.mode).toBe("polling");
  });

  it("closes the socket on unmount", () => {
    getCheck.mockResolvedValue(running());
    const { unmount } = renderHook(() => useCheck("c1"), { wrapper: wrapper() });
    unmount();
    expect(MockWebSocket.last().closed).toBe(true);
  });
});

describe("live messages", () => {
  it("builds the socket URL with or without a query", () => {
    expect(socketUrl("wss://x.example/v1", "a b")).toBe("wss://x.example/v1?check_id=a%20b");
    expect(socketUrl("ws://x/?k=1", "c")).toBe("ws://x/?k=1&check_id=c");
  });

  it("ignores a result before any snapshot", () => {
    expect(applyLiveMessage(undefined, { type: "result", result: result({ check_type: "http" }) })).toBeUndefined();
  });

  it("reads a known message and drops one that is not JSON or of an unknown kind", () => {
    expect(parseLiveMessage('{"type":"error","code":4404,"message":"no such check"}')).toEqual({
      type: "error",
      code: 4404,
      message: "no such check",
    });
    expect(parseLiveMessage("not json")).toBeNull();
    expect(parseLiveMessage('{"type":"heartbeat"}')).toBeNull();
    expect(parseLiveMessage("[1]")).toBeNull();
    expect(parseLiveMessage("null")).toBeNull();
  });

  it("backs off up to 30 s", () => {
    expect([0, 1, 2, 10].map(backoffMs)).toEqual([1000, 2000, 4000, 30000]);
  });
});
