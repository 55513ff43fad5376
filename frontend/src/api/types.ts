/**
 * The API's shapes as the UI uses them: aliases of the types generated from the OpenAPI document
 * (schema.ts, `npm run gen:types`), so a change to the API shows up here as a type error.
 *
 * Two kinds of loosening, both on purpose:
 * - `data` stays an open record: the spec describes it in prose (ResultData, HttpData, DnsData)
 *   and each check type reads its own fields;
 * - fields the UI does not need to render (late, attempts, target_info, ...) are optional, so a
 *   test fixture or an older API's answer without them still type-checks.
 */
import type { components, operations } from "./schema";

type S = components["schemas"];
/** T with the keys K made optional. */
type Loose<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;

export type CheckType = S["CheckType"];
export type CheckStatus = S["CheckStatus"];
export type TaskStatus = S["TaskStatus"];
export type AgentRef = S["AgentRef"];
export type ResultError = NonNullable<S["TaskError"]>;
export type TypeSummary = S["TypeSummary"];
export type CheckSelection = S["Selection"];
export type TargetInfo = NonNullable<S["TargetInfo"]>;
export type FieldDetail = Partial<Pick<S["Error"]["error"]["details"][number], "field">> & { message: string };

export type TaskResult = Loose<Omit<S["TaskRow"], "data">, "late" | "attempts" | "address"> & {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data: Record<string, any> | null;
};

export type CheckOptions = Partial<Record<CheckType, Record<string, unknown>>>;

export type Verdict = S["Verdict"];

export type Check = Loose<
  Omit<S["Check"], "options" | "results" | "summary" | "assumed">,
  "target_info" | "selection" | "error" | "started_at" | "certificates" | "verdict"
> & {
  options: CheckOptions | null;
  summary: Record<string, TypeSummary> | null;
  results: TaskResult[];
  /** Per type, what was chosen because neither the target nor the options said (http: scheme, port). */
  assumed?: Partial<Record<CheckType, Record<string, unknown>>> | null;
};

export type Certificates = NonNullable<S["Certificates"]>;

/** An item of GET /api/checks. Only check_id/target/status/created_at are relied on. */
export type CheckListItem = Loose<S["CheckListItem"], "check_types" | "error" | "task_count" | "summary" | "completed_at">;

/** `capabilities` stays open: an agent newer than this UI may advertise a type it does not know yet. */
export type Agent = Loose<Omit<S["Agent"], "capabilities">, "region" | "registered_at"> & {
  capabilities: string[] | null;
};
type StatsRow = S["AgentStats"]["stats"][string];
/** Per type; the split of failures and the headline latency are newer than count/success/duration. */
export type TypeStats = Loose<
  StatsRow,
  | "ok"
  | "target_failures"
  | "agent_failures"
  | "agent_failure_rate"
  | "failures_by_kind"
  | "latency_avg_ms"
  | "latency_p50_ms"
  | "latency_p95_ms"
>;
export type AgentStats = Omit<S["AgentStats"], "stats"> & { stats: Record<string, TypeStats> };

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export type CreateCheckRequest = Omit<S["CheckRequest"], "options"> & { options?: CheckOptions };
export type CreateCheckResponse = Loose<S["CheckCreated"], "error" | "target" | "check_types" | "created_at" | "tasks" | "agents">;

/** The query parameters of GET /api/checks. */
export type ListChecksQuery = NonNullable<operations["listChecks"]["parameters"]["query"]>;
