import type { TaskResult, TypeSummary } from "../api/types";
import { OPTION_SPECS } from "../api/spec";
import { checkLabel } from "./checkTypes";

export function isNum(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** "42 ms", "3.4 ms", "1.25 s" */
export function formatMs(v: unknown): string {
  if (!isNum(v)) return "—";
  if (v >= 10000) return `${(v / 1000).toFixed(1)} s`;
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  if (v < 10) return `${Number(v.toFixed(1))} ms`;
  return `${Math.round(v)} ms`;
}

export function formatPct(v: unknown, digits = 0): string {
  if (!isNum(v)) return "—";
  return `${Number(v.toFixed(digits))}%`;
}

/** A success rate from the API may be a fraction (0..1) or a percentage. */
export function formatRate(v: unknown): string {
  if (!isNum(v)) return "—";
  const pct = v <= 1 ? v * 100 : v;
  return `${Number(pct.toFixed(1))}%`;
}

export function formatBytes(v: unknown): string {
  if (!isNum(v)) return "—";
  if (v < 1024) return `${v} B`;
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KiB`;
  return `${(v / 1024 / 1024).toFixed(1)} MiB`;
}

/** A wait in whole seconds: "45 s", "16 min 40 s", "1 h 5 min". */
export function formatWait(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) {
    const m = Math.floor(s / 60);
    const rest = s % 60;
    return rest ? `${m} min ${rest} s` : `${m} min`;
  }
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

/**
 * A result's error message without a leading copy of the URL it is about
 * ("https://example.com/: certificate verify failed" -> "certificate verify failed"):
 * the row and column already say which target and check it is.
 */
export function shortError(message: string | null | undefined): string {
  if (!message) return "";
  const m = /^[a-z][a-z0-9+.-]*:\/\/\S*?:\s+(.+)$/is.exec(message);
  return m ? m[1] : message;
}

/** The failure kinds of one check type's results: "tls error", "timeout ×2, refused". */
export function failureKinds(results: TaskResult[], type: string): string {
  const counts = new Map<string, number>();
  for (const r of results) {
    if (r.check_type !== type || outcomeOf(r) !== "failed") continue;
    const kind = (r.error?.kind || "error").replace(/_/g, " ");
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => (n > 1 && counts.size > 1 ? `${k} ×${n}` : k))
    .join(", ");
}

/** "just now", "12 s ago", "5 min ago", "3 h ago", "2 d ago" */
export function relativeTime(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return "never";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "—";
  const s = Math.round((now - t) / 1000);
  if (s < 0) return s > -5 ? "just now" : "in the future";
  if (s < 3) return "just now";
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} d ago`;
}

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString();
}

export type Outcome = "pending" | "running" | "ok" | "failed";

/** What a result cell shows as its badge. */
export function outcomeOf(r: Pick<TaskResult, "status" | "success"> | undefined | null): Outcome {
  if (!r) return "pending";
  if (r.status === "pending") return "pending";
  if (r.status === "in_progress") return "running";
  if (r.status === "failed") return "failed";
  if (r.status === "completed") return r.success === false ? "failed" : "ok";
  return r.success === true ? "ok" : r.success === false ? "failed" : "pending";
}

export function isTerminalCheck(status: string | undefined | null): boolean {
  return status === "completed" || status === "failed";
}

/** The headline number(s) of a finished result, per check type. */
export function headline(r: TaskResult): string {
  const d = r.data ?? {};
  switch (r.check_type) {
    case "http": {
      const parts: string[] = [];
      if (d.status_code != null) parts.push(String(d.status_code));
      const total = d.timings_ms?.total ?? r.duration_ms;
      if (isNum(total)) parts.push(formatMs(total));
      return parts.join(" · ");
    }
    case "ping":
    case "mtr": {
      const parts: string[] = [];
      if (isNum(d.rtt_ms?.avg)) parts.push(`${formatMs(d.rtt_ms.avg)} avg`);
      if (isNum(d.loss_pct)) parts.push(`${formatPct(d.loss_pct)} loss`);
      if (r.check_type === "mtr" && Array.isArray(d.hops)) parts.push(`${d.hops.length} hops`);
      if (d.protocol === "tcp" || d.protocol === "udp") parts.push(`${String(d.protocol).toUpperCase()} ${d.port}`);
      return parts.join(" · ");
    }
    case "dns": {
      const answers: Array<{ value?: unknown }> = Array.isArray(d.answers) ? d.answers : [];
      if (answers.length === 0 && typeof d.note === "string" && /^no PTR record/i.test(d.note)) return "no PTR record";
      if (answers.length === 0) return d.rcode ? `0 answers (${d.rcode})` : "0 answers";
      const values = answers
        .slice(0, 2)
        .map((a) => String(a.value ?? ""))
        .join(", ");
      const more = answers.length > 2 ? ", …" : "";
      return `${answers.length} answer${answers.length === 1 ? "" : "s"}: ${values}${more}`;
    }
    case "tcp": {
      const ms = d.connect_ms ?? r.duration_ms;
      return isNum(ms) ? `${formatMs(ms)} connect` : "";
    }
    case "traceroute": {
      const hops = Array.isArray(d.hops) ? d.hops.length : null;
      if (hops === null) return "";
      const reached = d.reached === false ? " (not reached)" : "";
      return `${hops} hop${hops === 1 ? "" : "s"}${reached}`;
    }
    default:
      return isNum(r.duration_ms) ? formatMs(r.duration_ms) : "";
  }
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** The per-type summary computed from the results, used when the API sends none. */
export function computeSummary(results: TaskResult[], type: string): TypeSummary {
  const rs = results.filter((r) => r.check_type === type);
  let ok = 0;
  let failed = 0;
  let pending = 0;
  const durations: number[] = [];
  for (const r of rs) {
    const o = outcomeOf(r);
    if (o === "ok") {
      ok++;
      if (isNum(r.duration_ms)) durations.push(r.duration_ms);
    } else if (o === "failed") failed++;
    else pending++;
  }
  return { ok, failed, pending, total: rs.length, median_ms: median(durations) };
}

/**
 * The number a type's verdict line quotes. For ping the task's duration is mostly
 * the packet interval, so the median of the agents' average RTTs says more.
 */
export function summaryMedian(type: string, results: TaskResult[], s: TypeSummary): { value: number | null; label: string } {
  if (type === "ping" || type === "mtr") {
    const rtts = results
      .filter((r) => r.check_type === type && outcomeOf(r) === "ok" && isNum(r.data?.rtt_ms?.avg))
      .map((r) => r.data!.rtt_ms.avg as number);
    const m = median(rtts);
    if (m !== null) return { value: m, label: "median RTT" };
  }
  if (type === "traceroute") {
    // The task's duration is mostly probe timeouts; the last hop's RTT is what a reader wants.
    const rtts: number[] = [];
    for (const r of results) {
      if (r.check_type !== "traceroute" || outcomeOf(r) !== "ok" || !Array.isArray(r.data?.hops)) continue;
      const last = r.data!.hops[r.data!.hops.length - 1];
      const times = (Array.isArray(last?.rtts_ms) ? last.rtts_ms : []).filter(isNum) as number[];
      if (times.length) rtts.push(times.reduce((a, b) => a + b, 0) / times.length);
    }
    const m = median(rtts);
    if (m !== null) return { value: m, label: "median RTT to the last hop" };
  }
  return { value: s.median_ms, label: "median" };
}

/**
 * "HTTP OK from 3/3 agents, median 42 ms" and its variants. `kinds` (from
 * failureKinds) says which layer failed: "HTTP failed on all 3 agents (tls error)".
 */
export function summaryLine(
  type: string,
  s: TypeSummary,
  medianLabel = "median",
  medianValue: number | null = s.median_ms,
  kinds = "",
): string {
  const label = checkLabel(type);
  const med = isNum(medianValue) ? `, ${medianLabel} ${formatMs(medianValue)}` : "";
  const why = kinds ? ` (${kinds})` : "";
  const agents = (n: number) => `${n} agent${n === 1 ? "" : "s"}`;
  if (!s.total) return `${label}: no agents ran this check`;
  if (s.pending > 0) {
    const done = s.ok + s.failed;
    if (done === 0) return `${label}: waiting for ${agents(s.total)}…`;
    const failedPart = s.failed ? `, failed on ${s.failed}${why}` : "";
    return `${label}: ${done}/${s.total} done, OK from ${s.ok}${failedPart}, ${s.pending} pending${med}`;
  }
  if (s.failed === 0) return `${label} OK from ${s.ok}/${s.total} ${s.total === 1 ? "agent" : "agents"}${med}`;
  if (s.ok === 0) return s.total === 1 ? `${label} failed on its agent${why}` : `${label} failed on all ${agents(s.total)}${why}`;
  return `${label} OK from ${s.ok}/${s.total} agents, failed on ${s.failed}${why}${med}`;
}

export type Verdict = "ok" | "partial" | "failed" | "pending";

export function verdictOf(s: TypeSummary): Verdict {
  if (s.pending > 0) return "pending";
  if (s.total > 0 && s.failed === 0) return "ok";
  if (s.ok === 0) return "failed";
  return "partial";
}

/** An option value in one spelling, so [200, 399], "200-399" and "200 - 399" compare equal. */
function optionText(key: string, v: unknown): string {
  if (key === "expected_status" && Array.isArray(v)) return v[0] === v[1] ? String(v[0]) : `${v[0]}-${v[1]}`;
  if (key === "expected_status" && typeof v === "string") return v.replace(/\s+/g, "");
  if (v && typeof v === "object") return Object.keys(v).length ? JSON.stringify(v) : "";
  return v === null || v === undefined ? "" : String(v);
}

/** One option that differs from its default, as the options line says it. */
function describeOption(type: string, key: string, v: unknown): string | null {
  const text = optionText(key, v);
  switch (key) {
    case "method":
    case "record_type":
      return text;
    case "expected_status":
      return `expect ${text}`;
    case "follow_redirects":
      return v === false ? "no redirects followed" : "redirects followed";
    case "verify_tls":
      return v === false ? "TLS not verified" : "TLS verified";
    case "timeout":
      return `timeout ${text} s`;
    case "ip_version":
      return text ? `IPv${text} only` : null;
    case "count":
      return type === "mtr" ? `${text} rounds` : `${text} packets`;
    case "max_hops":
      return `max ${text} hops`;
    case "protocol":
      return text.toUpperCase();
    case "port":
      return type === "dns" ? null : `port ${text}`; // dns: said with the resolver below
    case "resolver":
      return null;
    case "headers":
      return `${Object.keys(v as object).length} custom header${Object.keys(v as object).length === 1 ? "" : "s"}`;
    case "auth":
      return `basic auth as ${(v as { username?: string }).username ?? "?"}`;
    case "expect":
      return `${Object.keys(v as object).length} assertion${Object.keys(v as object).length === 1 ? "" : "s"}`;
    case "body":
      return `body ${new TextEncoder().encode(String(v)).length} B`;
    case "http_version":
      return `HTTP/${text}`;
    case "dnssec":
      return v ? "DNSSEC" : null;
    case "trace":
      return v ? "trace" : null;
    default:
      return `${key.replace(/_/g, " ")} ${text}`;
  }
}

/**
 * The options a check ran with that a reader of its results should know, per type
 * ("DNS MX @ 192.0.2.53:5353 TCP", "HTTP TLS not verified, timeout 1 s"): every option that
 * differs from the default the OpenAPI document publishes, and always the DNS record type.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function describeOptions(types: string[], options: Record<string, any> | null | undefined): string[] {
  const out: string[] = [];
  for (const t of types) {
    const o = options?.[t];
    if (!o || typeof o !== "object") continue;
    const specs = (OPTION_SPECS as unknown as Record<string, Record<string, { default?: unknown }>>)[t] ?? {};
    const parts: string[] = [];
    for (const [key, v] of Object.entries(o)) {
      const isDefault = optionText(key, v) === optionText(key, specs[key]?.default ?? null);
      if (isDefault && !(t === "dns" && key === "record_type")) continue;
      const said = describeOption(t, key, v);
      if (said) parts.push(said);
    }
    if (t === "dns") {
      const port = isNum(o.port) && o.port !== specs.port?.default ? `:${o.port}` : "";
      if (o.resolver) parts.splice(1, 0, `@ ${o.resolver}${port}`);
      else if (port) parts.splice(1, 0, `port ${o.port}`);
    }
    if (parts.length) out.push(`${checkLabel(t)} ${parts.join(t === "dns" ? " " : ", ")}`);
  }
  return out;
}

/** What a check assumed because neither target nor options said: "HTTP assumed https, port 443". */
export function describeAssumed(assumed: Record<string, Record<string, unknown> | undefined> | null | undefined): string[] {
  const out: string[] = [];
  for (const [t, a] of Object.entries(assumed ?? {})) {
    if (!a || typeof a !== "object") continue;
    const parts = Object.entries(a)
      .filter(([, v]) => v !== null && v !== undefined && typeof v !== "object")
      .map(([k, v]) => (k === "scheme" || k === "record_type" ? String(v) : `${k.replace(/_/g, " ")} ${v}`));
    if (parts.length) out.push(`${checkLabel(t)} assumed ${parts.join(", ")}`);
  }
  return out;
}

/** A whole check's verdict for a list row, from its per-type summary: all failed is red, not "completed". */
export function checkVerdict(c: {
  status: string;
  summary?: Record<string, TypeSummary> | null;
}): { verdict: Verdict; label: string } {
  if (c.status === "failed") return { verdict: "failed", label: "could not run" };
  const all = Object.values(c.summary ?? {}).reduce(
    (a, s) => ({ ok: a.ok + s.ok, failed: a.failed + s.failed, pending: a.pending + s.pending, total: a.total + s.total }),
    { ok: 0, failed: 0, pending: 0, total: 0 },
  );
  if (all.total === 0) return c.status === "completed" ? { verdict: "failed", label: "no results" } : { verdict: "pending", label: "pending" };
  if (all.pending > 0) return { verdict: "pending", label: all.ok + all.failed > 0 ? `running ${all.ok + all.failed}/${all.total}` : "pending" };
  if (all.failed === 0) return { verdict: "ok", label: "OK" };
  if (all.ok === 0) return { verdict: "failed", label: "failed" };
  return { verdict: "partial", label: `${all.ok}/${all.total} OK` };
}
