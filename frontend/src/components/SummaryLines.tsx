import type { Check } from "../api/types";
import { computeSummary, failureKinds, summaryLine, summaryMedian, verdictOf } from "../lib/format";
import { LayerVerdict } from "./LayerVerdict";

const DOT: Record<string, string> = {
  ok: "bg-emerald-500",
  partial: "bg-amber-500",
  failed: "bg-red-500",
  pending: "bg-sky-400 animate-pulse",
};

export function SummaryLines({ check }: { check: Check }) {
  const types = check.check_types ?? [];
  return (
    <div className="space-y-2">
      <ul data-testid="summary" className="space-y-1">
        {types.map((t) => {
          const s = check.summary?.[t] ?? computeSummary(check.results ?? [], t);
          const v = verdictOf(s);
          const med = summaryMedian(t, check.results ?? [], s);
          return (
            <li key={t} data-testid={`summary-${t}`} data-verdict={v} className="flex items-center gap-2 text-sm text-slate-700">
              <span className={`h-2.5 w-2.5 shrink-0 rounded-full ${DOT[v]}`} aria-hidden />
              {summaryLine(t, s, med.label, med.value, failureKinds(check.results ?? [], t))}
            </li>
          );
        })}
      </ul>
      <LayerVerdict check={check} />
    </div>
  );
}
