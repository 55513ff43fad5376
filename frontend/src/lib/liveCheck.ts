import type { AgentRef, Check, CheckStatus, TaskResult, TaskStatus, TypeSummary, Verdict } from "../api/types";
import { computeSummary } from "./format";

/**
 * Live results over the WebSocket of docs/api.md ("Live results"):
 * connect to `WS_URL?check_id=<id>`, send one message (the snapshot is the answer: API Gateway
 * cannot send during $connect), then `snapshot`, a `result` per finished task, `task` when one
 * starts, and a final `status`, after which the server closes with 1000.
 */

export type LiveMode = "live" | "polling";

/** The server's messages (openapi.json `x-websocket.server_messages`), in the API's own types. */
export type LiveMessage =
  | { type: "snapshot"; check: Check }
  | { type: "result"; result: TaskResult }
  | { type: "task"; task_id: string; status: TaskStatus; agent: AgentRef }
  | {
      type: "status";
      status: CheckStatus;
      summary: Record<string, TypeSummary> | null;
      verdict?: Verdict | null;
      completed_at: string | null;
    }
  | { type: "error"; code: number; message: string };

const LIVE_TYPES: ReadonlySet<string> = new Set<LiveMessage["type"]>(["snapshot", "result", "task", "status", "error"]);

/**
 * One frame as a message, or null when it is not JSON or of a kind this UI does not know (a newer
 * server may add kinds; ignoring them keeps the socket useful). The fields are trusted as the
 * API's, as an HTTP answer's are.
 */
export function parseLiveMessage(raw: unknown): LiveMessage | null {
  let value: unknown;
  try {
    value = JSON.parse(String(raw));
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || !("type" in value)) return null;
  return typeof value.type === "string" && LIVE_TYPES.has(value.type) ? (value as LiveMessage) : null;
}

let liveUrl: string | null = null;

/** Set from config.json's `wsUrl` at start-up; null means no socket, poll only. */
export function configureLive(url: string | null) {
  liveUrl = url ? url.trim() : null;
}

export function liveBaseUrl(): string | null {
  return liveUrl;
}

export function socketUrl(base: string, checkId: string): string {
  return `${base}${base.includes("?") ? "&" : "?"}check_id=${encodeURIComponent(checkId)}`;
}

/** Reconnect delays: 1 s, 2 s, 4 s ... at most 30 s. */
export function backoffMs(attempt: number): number {
  return Math.min(1000 * 2 ** attempt, 30000);
}

function withSummaries(check: Check, results: TaskResult[]): Check {
  const summary: Record<string, TypeSummary> = {};
  for (const t of check.check_types ?? []) summary[t] = computeSummary(results, t);
  return { ...check, results, summary };
}

/** The cached check after one message; results are matched (and duplicates dropped) by task_id. */
export function applyLiveMessage(check: Check | undefined, msg: LiveMessage): Check | undefined {
  if (msg.type === "snapshot") return msg.check;
  if (!check) return check;
  const running = check.status === "pending" ? "in_progress" : check.status;
  if (msg.type === "result") {
    const results = check.results.map((r) => (r.task_id === msg.result.task_id ? msg.result : r));
    if (!results.some((r) => r.task_id === msg.result.task_id)) results.push(msg.result);
    return withSummaries({ ...check, status: running }, results);
  }
  if (msg.type === "task") {
    const results = check.results.map((r) =>
      r.task_id === msg.task_id && (r.status === "pending" || r.status === "in_progress") ? { ...r, status: msg.status } : r,
    );
    return { ...check, status: running, results };
  }
  if (msg.type === "status") {
    return {
      ...check,
      status: msg.status,
      summary: msg.summary ?? check.summary,
      verdict: msg.verdict ?? check.verdict,
      completed_at: msg.completed_at,
    };
  }
  return check;
}

export interface LiveOptions {
  url: string;
  checkId: string;
  onMessage: (msg: LiveMessage) => void;
  onMode: (mode: LiveMode) => void;
  /** Whether the check is known to be finished (then a dropped socket is not reopened). */
  isDone: () => boolean;
  WebSocketImpl?: typeof WebSocket;
}

/**
 * Keep one socket open for a check. Live only once the snapshot arrived; until then, and
 * whenever the socket drops before the final status, the caller polls, and the socket is
 * reopened with backoff (its new snapshot replaces the old state). Returns a stop function.
 */
export function connectLive(opts: LiveOptions): () => void {
  const Impl = opts.WebSocketImpl ?? WebSocket;
  let ws: WebSocket | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let attempt = 0;
  let stopped = false;
  let finished = false;

  const open = () => {
    timer = null;
    if (stopped || opts.isDone()) return;
    try {
      ws = new Impl(socketUrl(opts.url, opts.checkId));
    } catch {
      retry();
      return;
    }
    ws.onopen = () => ws?.send(JSON.stringify({ action: "subscribe" }));
    ws.onmessage = (ev: MessageEvent) => onMessage(ev.data);
    ws.onclose = (ev: CloseEvent) => onClose(ev.code);
  };

  const onMessage = (raw: unknown) => {
    const msg = parseLiveMessage(raw);
    if (!msg) return;
    if (msg.type === "snapshot") {
      attempt = 0;
      opts.onMode("live");
    }
    if (msg.type === "status" || msg.type === "error") finished = true;
    opts.onMessage(msg);
  };

  const onClose = (code: number) => {
    ws = null;
    if (stopped || finished) return;
    opts.onMode("polling");
    if (code === 4404 || code === 4400) return; // the check cannot be followed; polling says why
    retry();
  };

  const retry = () => {
    if (stopped) return;
    opts.onMode("polling");
    timer = setTimeout(open, backoffMs(attempt));
    attempt += 1;
  };

  open();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    if (ws) {
      ws.onclose = null;
      ws.close(1000);
    }
  };
}
