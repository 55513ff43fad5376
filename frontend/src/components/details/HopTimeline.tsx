import { formatMs, isNum } from "../../lib/format";
import { PHASE_COLOR, PHASE_LABEL, waterfallSegments } from "./Waterfall";

export interface Hop {
  url: string;
  status_code: number | null;
  address?: string | null;
  timings_ms?: Record<string, unknown> | null;
}

/**
 * The requests of an HTTP check in order: `data.hops` (every request), or for an older agent the
 * redirects that carry their own `timings_ms` plus the final response.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function hopsOf(d: Record<string, any>): Hop[] {
  if (Array.isArray(d.hops) && d.hops.length) return d.hops;
  const redirects: Hop[] = Array.isArray(d.redirects) ? d.redirects.filter((h: Hop) => h && h.timings_ms) : [];
  if (redirects.length === 0) return [];
  return [...redirects, { url: d.final_url ?? "", status_code: d.status_code ?? null, address: d.address, timings_ms: null }];
}

function hopTotal(h: Hop): number {
  return h.timings_ms ? waterfallSegments(h.timings_ms).total : 0;
}

/** Where each hop starts on the common axis: the sum of the hops before it. */
function startOffsets(totals: number[]): number[] {
  const starts: number[] = [];
  let sum = 0;
  for (const t of totals) {
    starts.push(sum);
    sum += t;
  }
  return starts;
}

/**
 * One row per request on a common time axis: each hop starts where the previous one ended, and its
 * phases (DNS, connect, TLS, ...) are drawn inside it, so three connects read as three.
 */
export function HopTimeline({ hops }: { hops: Hop[] }) {
  const totals = hops.map(hopTotal);
  const starts = startOffsets(totals);
  const end = totals.reduce((a, b) => a + b, 0) || 1;
  return (
    <ol data-testid="hop-timeline" className="space-y-1.5">
      {hops.map((h, i) => {
        const start = starts[i];
        const { segments } = waterfallSegments(h.timings_ms);
        const redirect = isNum(h.status_code) && h.status_code >= 300 && h.status_code < 400;
        return (
          <li key={i} data-testid="hop-row" className="text-xs">
            <div className="flex min-w-0 items-baseline gap-2 font-mono">
              <span className={`rounded px-1.5 ${redirect ? "bg-amber-100 text-amber-800" : "bg-emerald-100 text-emerald-800"}`}>
                {h.status_code ?? "—"}
              </span>
              <span className="min-w-0 flex-1 truncate" title={h.url}>
                {h.url}
              </span>
              <span className="tabular-nums text-slate-700" data-testid="hop-total">
                {h.timings_ms ? formatMs(totals[i]) : "—"}
              </span>
            </div>
            <div className="relative mt-0.5 h-3 rounded bg-slate-100">
              {segments.map((s) =>
                s.duration ? (
                  <div
                    key={s.phase}
                    data-testid={`hop-bar-${s.phase}`}
                    data-ms={s.duration}
                    className="absolute top-0 h-full"
                    style={{ left: `${((start + s.start) / end) * 100}%`, width: `${(s.duration / end) * 100}%`, backgroundColor: PHASE_COLOR[s.phase] }}
                    title={`${PHASE_LABEL[s.phase]}: ${formatMs(s.duration)}`}
                  />
                ) : null,
              )}
            </div>
            {h.address && <div className="mt-0.5 font-mono text-[11px] text-slate-500">{h.address}</div>}
          </li>
        );
      })}
    </ol>
  );
}
