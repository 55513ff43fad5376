import { formatMs, isNum } from "../../lib/format";

export const PHASES = ["dns", "connect", "tls", "ttfb", "download"] as const;
export type Phase = (typeof PHASES)[number];

const PHASE_LABEL: Record<Phase, string> = {
  dns: "DNS lookup",
  connect: "TCP connect",
  tls: "TLS handshake",
  ttfb: "Waiting (TTFB)",
  download: "Download",
};

const PHASE_COLOR: Record<Phase, string> = {
  dns: "#0ea5e9",
  connect: "#f59e0b",
  tls: "#a855f7",
  ttfb: "#10b981",
  download: "#3b82f6",
};

export interface Segment {
  phase: Phase;
  start: number;
  duration: number | null; // null: the phase did not happen (e.g. tls on http://)
}

/**
 * Turn timings_ms into waterfall segments. Phases are read as durations that
 * follow one another; if they are cumulative instead (each one measured from
 * the start, as curl reports them: the sum far exceeds `total` and they never
 * decrease) they are differenced first.
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
  return { segments, total: Math.max(total, cursor) };
}

export function Waterfall({ timings }: { timings: Record<string, unknown> | null | undefined }) {
  if (!timings) return <p className="text-sm text-slate-500">No timings were reported.</p>;
  const { segments, total } = waterfallSegments(timings);
  const scale = total > 0 ? total : 1;
  return (
    <div data-testid="waterfall" className="space-y-1.5">
      {segments.map((s) => {
        const left = (s.start / scale) * 100;
        const width = s.duration === null ? 0 : Math.max((s.duration / scale) * 100, s.duration > 0 ? 0.75 : 0);
        return (
          <div key={s.phase} className="grid grid-cols-[8.5rem_1fr_4.5rem] items-center gap-2 text-xs" data-testid={`waterfall-row-${s.phase}`}>
            <span className="text-slate-600">{PHASE_LABEL[s.phase]}</span>
            <div className="relative h-3.5 rounded bg-slate-100">
              {s.duration !== null && (
                <div
                  data-testid={`waterfall-bar-${s.phase}`}
                  data-ms={s.duration}
                  className="absolute top-0 h-full rounded"
                  style={{ left: `${left}%`, width: `${width}%`, backgroundColor: PHASE_COLOR[s.phase] }}
                  title={`${PHASE_LABEL[s.phase]}: ${formatMs(s.duration)}`}
                />
              )}
            </div>
            <span className="text-right font-mono tabular-nums text-slate-700">
              {s.duration === null ? "—" : formatMs(s.duration)}
            </span>
          </div>
        );
      })}
      <div className="grid grid-cols-[8.5rem_1fr_4.5rem] gap-2 border-t border-slate-200 pt-1.5 text-xs font-semibold">
        <span>Total</span>
        <span />
        <span className="text-right font-mono tabular-nums" data-testid="waterfall-total">
          {formatMs(total)}
        </span>
      </div>
    </div>
  );
}
