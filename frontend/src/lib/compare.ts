import type { TaskResult } from "../api/types";
import { headline, isNum, outcomeOf } from "./format";
import type { Scales } from "../components/details/Details";
import { waterfallSegments } from "../components/details/Waterfall";

/** The one number per result that "sort by latency" and the shared scales compare (ms), or null. */
export function latencyOf(r: TaskResult | undefined): number | null {
  if (!r || outcomeOf(r) !== "ok") return null;
  const d = r.data ?? {};
  switch (r.check_type) {
    case "http":
      return isNum(d.timings_ms?.total) ? d.timings_ms.total : r.duration_ms;
    case "ping":
    case "mtr":
      return isNum(d.rtt_ms?.avg) ? d.rtt_ms.avg : null;
    case "tcp":
      return isNum(d.connect_ms) ? d.connect_ms : r.duration_ms;
    case "dns":
      return isNum(d.query_time_ms) ? d.query_time_ms : r.duration_ms;
    case "traceroute": {
      const last = Array.isArray(d.hops) ? d.hops[d.hops.length - 1] : null;
      const rtts = (Array.isArray(last?.rtts_ms) ? last.rtts_ms : []).filter(isNum) as number[];
      return rtts.length ? rtts.reduce((a, b) => a + b, 0) / rtts.length : null;
    }
    default:
      return r.duration_ms;
  }
}

/** The largest HTTP total and ping RTT of all agents: every waterfall and RTT chart is drawn to these. */
export function sharedScales(results: TaskResult[]): Scales {
  let http = 0;
  let ping = 0;
  for (const r of results) {
    const d = r.data;
    if (!d) continue;
    if (r.check_type === "http" && d.timings_ms) http = Math.max(http, waterfallSegments(d.timings_ms).total);
    if (r.check_type === "ping") {
      const rtts = (Array.isArray(d.rtts_ms) ? d.rtts_ms : []).filter(isNum) as number[];
      ping = Math.max(ping, ...rtts, isNum(d.rtt_ms?.max) ? d.rtt_ms.max : 0);
    }
  }
  return { http: http || undefined, ping: ping || undefined };
}

/** The addresses an agent's checks talked to (one, usually; more if they resolved differently). */
export function addressesOf(results: (TaskResult | undefined)[]): string[] {
  const out = new Set<string>();
  for (const r of results) {
    const a = r?.address ?? r?.data?.address;
    if (typeof a === "string" && a) out.add(a);
  }
  return [...out];
}

/** Ping's min / avg / max RTT as "10 / 12 / 15 ms", or null. */
export function pingMinAvgMax(r: TaskResult | undefined): { min: number; avg: number; max: number } | null {
  const rtt = r?.data?.rtt_ms;
  if (!r || outcomeOf(r) !== "ok" || !rtt || !isNum(rtt.min) || !isNum(rtt.avg) || !isNum(rtt.max)) return null;
  return { min: rtt.min, avg: rtt.avg, max: rtt.max };
}

export type SortKey = "name" | `latency:${string}`;

interface RowLike {
  agent: { name: string };
  byType: Record<string, TaskResult>;
}

/** Rows by agent name, or by one type's latency (fastest first; no number last, by name). */
export function sortRows<R extends RowLike>(rows: R[], key: SortKey): R[] {
  const byName = (a: R, b: R) => a.agent.name.localeCompare(b.agent.name);
  if (key === "name") return [...rows].sort(byName);
  const type = key.slice("latency:".length);
  const l = (r: R) => latencyOf(r.byType[type]) ?? Number.POSITIVE_INFINITY;
  return [...rows].sort((a, b) => l(a) - l(b) || byName(a, b));
}

/** One CSV line per result: what the table shows, plus the numbers behind it. */
export function resultsCsv(results: TaskResult[]): string {
  const cols = ["agent", "location", "check_type", "status", "success", "address", "latency_ms", "duration_ms", "summary", "error_kind", "error_message"];
  const esc = (v: unknown) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = results.map((r) =>
    [
      r.agent?.name,
      r.agent?.location,
      r.check_type,
      r.status,
      r.success,
      addressesOf([r])[0],
      latencyOf(r),
      r.duration_ms,
      outcomeOf(r) === "ok" ? headline(r) : "",
      r.error?.kind,
      r.error?.message,
    ]
      .map(esc)
      .join(","),
  );
  return [cols.join(","), ...lines].join("\r\n") + "\r\n";
}
