export type CheckType = "http" | "ping" | "dns" | "tcp" | "traceroute";

export type CheckStatus = "pending" | "in_progress" | "completed" | "failed";
export type TaskStatus = "pending" | "in_progress" | "completed" | "failed";

export interface AgentRef {
  id: string;
  name: string;
  location: string;
}

export interface ResultError {
  kind: string;
  message: string;
}

export interface TaskResult {
  task_id: string;
  agent: AgentRef;
  check_type: CheckType | string;
  status: TaskStatus | string;
  success: boolean | null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: Record<string, any> | null;
  error: ResultError | null;
  duration_ms: number | null;
  started_at: string | null;
  completed_at: string | null;
}

export interface TypeSummary {
  ok: number;
  failed: number;
  pending: number;
  total: number;
  median_ms: number | null;
}

export type CheckOptions = Partial<Record<CheckType, Record<string, unknown>>>;

export interface CheckSelection {
  agents: string[] | null;
  locations: string[] | null;
  limit: number | null;
  chosen: string[];
}

export interface Check {
  check_id: string;
  target: string;
  check_types: string[];
  options: CheckOptions | null;
  status: CheckStatus | string;
  created_at: string;
  completed_at: string | null;
  summary: Record<string, TypeSummary> | null;
  results: TaskResult[];
  /** How the agents were asked for (null: not given) and which were chosen. */
  selection?: CheckSelection | null;
  /** Why a `failed` check could not run at all (e.g. "no eligible agent: ..."). */
  error?: string | { message?: string } | null;
}

/** An item of GET /api/checks. Only check_id/target/status/created_at are relied on. */
export interface CheckListItem {
  check_id: string;
  target: string;
  check_types?: string[];
  status: CheckStatus | string;
  created_at: string;
  completed_at?: string | null;
  summary?: Record<string, TypeSummary> | null;
}

export interface Agent {
  id: string;
  name: string;
  location: string;
  status: "online" | "offline" | string;
  last_heartbeat: string | null;
  version: string | null;
  capabilities: string[] | null;
  current_tasks: number | null;
  region?: string | null;
  clock_offset_ms?: number | null; // the agent's clock minus the API's
  clock_ok?: boolean; // false: off by more than the bound, refusing work
}

export interface TypeStats {
  count: number;
  success_rate: number | null;
  avg_ms: number | null;
  p95_ms: number | null;
}

export interface AgentStats {
  agent_id: string;
  window_hours: number;
  stats: Record<string, TypeStats>;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface CreateCheckRequest {
  target: string;
  checks: string[];
  options?: CheckOptions;
  agents?: string[];
  locations?: string[];
  limit?: number;
}

export interface CreateCheckResponse {
  check_id: string;
  status: string;
  tasks?: unknown;
  agents?: unknown;
}

export interface FieldDetail {
  field?: string;
  message: string;
}
