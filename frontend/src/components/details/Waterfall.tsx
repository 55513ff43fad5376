import { formatMs, isNum } from "../../lib/format";

export const PHASES = ["dns", "connect", "tls", "ttfb", "download"] as const;
export type Phase = (typeof PHASES)[number];
/** The part of the total no phase covers (building the request, reading certificate details). */
export type SegmentKind = Phase | "other";

export const PHASE_LABEL: Record<SegmentKind, string> = {
  dns: "DNS lookup",
  connect: "TCP connect",
  tls: "TLS handshake",
  ttfb: "Waiting (TTFB)",
  download: "Download",
  other: "Between phases",
};

export const PHASE_COLOR: Record<SegmentKind, string> = {
  dns: "#0ea5e9",
  connect: "#f59e0b",
  tls: "#a855f7",
  ttfb: "#10b981",
  download: "#3b82f6",
  other: "#94a3b8",
};

export interface Segment {
  phase: SegmentKind;
  start: number;
  duration: number | null; // null: the phase did not happen (e.g. tls on http://)
}

/** A remainder below this share of the total is rounding, not time worth a row. */
const REMAINDER_MIN_SHARE = 0.005;

/**
 * Turn timings_ms into waterfall segments. Phases are read as durations that
 * follow one another; if they are cumulative instead (each one measured from
 * the start, as curl reports them: the sum far exceeds `total` and they never
 * decrease) they are differenced first. Where the phases do not cover `total`,
 * a last "other" segment accounts for the rest, so the bars always reach the total.
 */
export function waterfallSegments(t: Record<string, unknown> | null | undefined): { segments: Segment[]; total: number } {
  const vals = PHASES.map((p) => (isNum(t?.[p]) ? (t?.[p] as number) : null));
  const present = vals.filter((v): v is number => v !== null);
  const sum = present.reduce((a, b) => a + b, 0);
  const total = isNum(t?.total) ? (t!.total as number) : sum;
  const nonDecreasing = present.every((v, i) => i === 0 || v >= present[i - 1]);
  const cumulative = present.length > 1 && total > 0 && sum > total * 1.25 && nonDecreasing;

  const segments: Segment[] = [];
  let cursor = 0;
  let prevMark = 0;
  PHASES.forEach((phase, i) => {
    const v = vals[i];
    if (v === null) {
      segments.push({ phase, start: cursor, duration: null });
      return;
    }
    const duration = cumulative ? Math.max(0, v - prevMark) : Math.max(0, v);
    if (cumulative && v > 0) prevMark = v;
    segments.push({ phase, start: cursor, duration });
    cursor += duration;
  });
  const rest = total - cursor;
  if (rest > 0 && rest > total * REMAINDER_MIN_SHARE) segments.push({ phase: "other", start: cursor, duration: rest });
  return { segments, total: Math.max(total, cursor) };
}

/** Percent of `scale` for a bar; a phase that took any time stays visible. */
function pct(ms: number, scale: number): number {
  return (ms / scale) * 100;
}

/**
 * One row per phase. `scale` (ms for the full track) is shared by every agent's
 * waterfall on the page, so 26 ms and 242 ms do not look alike; it defaults to this total.
 */
export function Waterfall({
  timings,
  scale,
  hopCount,
}: {
  timings: Record<string, unknown> | null | undefined;
  scale?: number;
  hopCount?: number;
}) {
  if (!timings) return <p className="text-sm text-slate-500">No timings were reported.</p>;
  const { segments, total } = waterfallSegments(timings);
  const track = Math.max(scale ?? 0, total) || 1;
  return (
    <div data-testid="waterfall" data-scale-ms={track} className="space-y-1.5">
      {hopCount !== undefined && hopCount > 1 && (
        <p className="text-[11px] text-slate-500" data-testid="waterfall-hops-note">
          Each phase summed over {hopCount} requests (see the per-hop timeline).
        </p>
      )}
      {segments.map((s) => {
        const width = s.duration === null ? 0 : Math.max(pct(s.duration, track), s.duration > 0 ? 0.75 : 0);
        return (
          <div key={s.phase} className="grid grid-cols-[7rem_1fr_4rem] items-center gap-2 text-xs sm:grid-cols-[8.5rem_1fr_4.5rem]" data-testid={`waterfall-row-${s.phase}`}>
            <span className={s.phase === "other" ? "italic text-slate-500" : "text-slate-600"}>{PHASE_LABEL[s.phase]}</span>
            <div className="relative h-3.5 rounded bg-slate-100">
              {s.duration !== null && (
                <div
                  data-testid={`waterfall-bar-${s.phase}`}
                  data-ms={s.duration}
                  className="absolute top-0 h-full rounded"
                  style={{ left: `${pct(s.start, track)}%`, width: `${width}%`, backgroundColor: PHASE_COLOR[s.phase] }}
                  title={`${PHASE_LABEL[s.phase]}: ${formatMs(s.duration)}`}
                />
              )}
            </div>
            <span className="text-right font-mono tabular-nums text-slate-700">{s.duration === null ? "—" : formatMs(s.duration)}</span>
          </div>
        );
      })}
      <div className="grid grid-cols-[7rem_1fr_4rem] gap-2 border-t border-slate-200 pt-1.5 text-xs font-semibold sm:grid-cols-[8.5rem_1fr_4.5rem]">
        <span>Total</span>
        <span />
        <span className="text-right font-mono tabular-nums" data-testid="waterfall-total">
          {formatMs(total)}
        </span>
      </div>
    </div>
  );
}

/** One agent's phases as a single stacked bar on a shared scale, for comparing agents side by side. */
export function WaterfallBar({ timings, scale, testId }: { timings: Record<string, unknown> | null | undefined; scale: number; testId?: string }) {
  const { segments, total } = waterfallSegments(timings);
  const track = Math.max(scale, total) || 1;
  return (
    <div data-testid={testId ?? "waterfall-bar"} data-scale-ms={track} data-total-ms={total} className="relative h-4 w-full rounded bg-slate-100">
      {segments.map((s) =>
        s.duration ? (
          <div
            key={s.phase}
            data-phase={s.phase}
            className="absolute top-0 h-full first:rounded-l"
            style={{ left: `${pct(s.start, track)}%`, width: `${pct(s.duration, track)}%`, backgroundColor: PHASE_COLOR[s.phase] }}
            title={`${PHASE_LABEL[s.phase]}: ${formatMs(s.duration)}`}
          />
        ) : null,
      )}
    </div>
  );
}

export function PhaseLegend() {
  return (
    <div className="flex flex-wrap gap-x-3 gap-y-1 text-[11px] text-slate-500">
      {(Object.keys(PHASE_LABEL) as SegmentKind[]).map((p) => (
        <span key={p} className="flex items-center gap-1">
          <span className="inline-block h-2 w-2 rounded-sm" style={{ backgroundColor: PHASE_COLOR[p] }} />
          {PHASE_LABEL[p]}
        </span>
      ))}
    </div>
  );
}
