import type { Check, TaskResult } from "../api/types";
import { sharedScales } from "../lib/compare";
import { formatMs, outcomeOf } from "../lib/format";
import { RttChart } from "./details/RttChart";
import { PhaseLegend, WaterfallBar, waterfallSegments } from "./details/Waterfall";
import { groupByAgent } from "./ResultsTable";

function finished(results: TaskResult[], type: string): TaskResult[] {
  return results.filter((r) => r.check_type === type && r.data && outcomeOf(r) !== "pending" && outcomeOf(r) !== "running");
}

/** Every agent's HTTP phases as one bar each, on one time axis. */
function HttpCompare({ results, scale }: { results: TaskResult[]; scale: number }) {
  return (
    <div data-testid="compare-http" className="space-y-1.5">
      <h3 className="text-xs font-semibold uppercase tracking-wide text-slate-500">HTTP timing, one scale ({formatMs(scale)} full width)</h3>
      {results.map((r) => (
        <div key={r.task_id} className="grid grid-cols-[6rem_1fr_4rem] items-center gap-2 text-xs sm:grid-cols-[9rem_1fr_4.5rem]">
          <span className="truncate text-slate-700" title={`${r.agent.name} · ${r.agent.location}`}>
            {r.agent.name}
          </span>
          <WaterfallBar timings={r.data?.timings_ms} scale={scale} testId={`compare-waterfall-${r.agent.id}`} />
          <span className="text-right font-mono tabular-nums text-slate-700">{formatMs(waterfallSegments(r.data?.timings_ms).total)}</span>
        </div>
      ))}
      <PhaseLegend />
    </div>
  );
}

/** Every agent's per-packet RTTs side by side, on one y axis. */
function PingCompare({ results, max }: { results: TaskResult[]; max: number }) {
  return (
    <div data-testid="compare-ping">
      <h3 className="mb-1.5 text-xs font-semibold uppercase tracking-wide text-slate-500">Ping RTT per packet, one scale</h3>
      <div className="grid gap-3 sm:grid-cols-2 lg:grid-cols-3">
        {results.map((r) => (
          <div key={r.task_id} className="min-w-0" data-testid={`compare-rtt-${r.agent.id}`}>
            <div className="text-xs text-slate-700">{r.agent.name}</div>
            <RttChart rtts={r.data?.rtts_ms} max={max} />
          </div>
        ))}
      </div>
    </div>
  );
}

/** Side-by-side waterfalls and RTT charts for all agents, drawn to the same scales. */
export function CompareCharts({ check }: { check: Check }) {
  const results = groupByAgent(check.results ?? []).flatMap((row) => Object.values(row.byType));
  const scales = sharedScales(results);
  const http = finished(results, "http").filter((r) => r.data?.timings_ms);
  const ping = finished(results, "ping").filter((r) => Array.isArray(r.data?.rtts_ms) && r.data!.rtts_ms.length);
  if (http.length + ping.length === 0) return null;
  return (
    <div data-testid="compare-charts" className="space-y-5">
      {http.length > 0 && scales.http && <HttpCompare results={http} scale={scales.http} />}
      {ping.length > 0 && scales.ping && <PingCompare results={ping} max={scales.ping} />}
    </div>
  );
}
