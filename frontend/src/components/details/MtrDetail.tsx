import type { TaskResult } from "../../api/types";
import { formatMs, formatPct, isNum } from "../../lib/format";

/** One mtr hop as the agent reports it (agent/checks/mtr.py; MtrHop in the OpenAPI document). */
export interface MtrHop {
  ttl: number;
  address: string | null;
  hostname?: string | null;
  sent: number;
  received: number;
  loss_pct: number;
  rtt_ms: { last: number | null; min: number | null; avg: number | null; max: number | null; stddev: number | null };
  jitter_ms?: { min: number | null; avg: number | null; max: number | null };
  rtts_ms?: Array<number | null>;
}

export function mtrHopsOf(data: Record<string, unknown> | null | undefined): MtrHop[] {
  return Array.isArray(data?.hops) ? (data!.hops as MtrHop[]) : [];
}

/** Loss colour: none, some, all. */
function lossTone(h: MtrHop): string {
  if (h.received === 0) return "#dc2626";
  return h.loss_pct > 0 ? "#d97706" : "#0d9488";
}

/**
 * The per-hop RTT chart: one row per hop, a bar from the best to the worst round trip with the
 * average marked, coloured by loss (red: nothing answered). Every hop shares one axis, so the
 * hop where latency jumps stands out.
 */
export function MtrHopChart({ hops }: { hops: MtrHop[] }) {
  if (hops.length === 0) return <p className="text-sm text-slate-500">No hops were reported.</p>;
  const max = Math.max(1, ...hops.map((h) => (isNum(h.rtt_ms?.max) ? (h.rtt_ms.max as number) : 0)));
  const row = 22;
  const pad = { l: 34, r: 60, t: 6, b: 22 };
  const W = 520;
  const H = pad.t + pad.b + row * hops.length;
  const innerW = W - pad.l - pad.r;
  const x = (v: number) => pad.l + (v / max) * innerW;
  return (
    <svg
      data-testid="mtr-chart"
      data-max-ms={max}
      viewBox={`0 0 ${W} ${H}`}
      className="h-auto w-full max-w-2xl"
      role="img"
      aria-label={`Round-trip time per hop, best to worst, up to ${formatMs(max)}`}
    >
      {[0, 0.5, 1].map((f) => (
        <g key={f}>
          <line x1={x(max * f)} x2={x(max * f)} y1={pad.t} y2={H - pad.b} stroke="#e2e8f0" />
          <text x={x(max * f)} y={H - 8} textAnchor="middle" fontSize="9" fill="#64748b">
            {formatMs(max * f)}
          </text>
        </g>
      ))}
      {hops.map((h, i) => {
        const cy = pad.t + row * i + row / 2;
        const { min, avg, max: worst } = h.rtt_ms ?? { min: null, avg: null, max: null };
        const answered = isNum(min) && isNum(worst) && isNum(avg);
        return (
          <g key={h.ttl} data-testid="mtr-bar" data-ttl={h.ttl} data-lost={!answered} data-loss={h.loss_pct}>
            <text x={pad.l - 6} y={cy + 3} textAnchor="end" fontSize="10" fill="#475569">
              {h.ttl}
            </text>
            {answered ? (
              <>
                <rect
                  x={x(min as number)}
                  y={cy - 4}
                  width={Math.max(2, x(worst as number) - x(min as number))}
                  height="8"
                  rx="3"
                  fill={lossTone(h)}
                  opacity="0.45"
                >
                  <title>{`hop ${h.ttl} ${h.address ?? ""}: best ${formatMs(min)}, avg ${formatMs(avg)}, worst ${formatMs(worst)}`}</title>
                </rect>
                <line x1={x(avg as number)} x2={x(avg as number)} y1={cy - 7} y2={cy + 7} stroke={lossTone(h)} strokeWidth="2" />
              </>
            ) : (
              <text x={pad.l + 4} y={cy + 4} fontSize="12" fill="#dc2626">
                ×<title>{`hop ${h.ttl}: no answer`}</title>
              </text>
            )}
            <text x={W - pad.r + 6} y={cy + 3} fontSize="10" fill={h.loss_pct > 0 ? "#b91c1c" : "#64748b"}>
              {formatPct(h.loss_pct)} loss
            </text>
          </g>
        );
      })}
    </svg>
  );
}

const th = "px-2 py-1 text-right text-xs font-semibold text-slate-500";
const td = "px-2 py-1 text-right font-mono text-xs text-slate-800";

/** The per-hop table, in mtr's report columns. */
export function MtrTable({ hops }: { hops: MtrHop[] }) {
  return (
    <table className="w-full" data-testid="mtr-table">
      <thead>
        <tr>
          <th className={th}>#</th>
          <th className={`${th} text-left`}>Host</th>
          <th className={th}>Loss</th>
          <th className={th}>Sent</th>
          <th className={th}>Last</th>
          <th className={th}>Avg</th>
          <th className={th}>Best</th>
          <th className={th}>Worst</th>
          <th className={th}>StDev</th>
          <th className={th}>Jitter</th>
        </tr>
      </thead>
      <tbody>
        {hops.map((h) => (
          <tr key={h.ttl} className="border-t border-slate-100" data-testid="mtr-hop">
            <td className={td}>{h.ttl}</td>
            <td className={`${td} break-all text-left`}>
              {h.address ?? "???"}
              {h.hostname && <span className="ml-1 text-slate-500">({h.hostname})</span>}
            </td>
            <td className={`${td}${h.loss_pct > 0 ? " text-red-700" : ""}`}>{formatPct(h.loss_pct)}</td>
            <td className={td}>{h.sent}</td>
            <td className={td}>{formatMs(h.rtt_ms?.last)}</td>
            <td className={td}>{formatMs(h.rtt_ms?.avg)}</td>
            <td className={td}>{formatMs(h.rtt_ms?.min)}</td>
            <td className={td}>{formatMs(h.rtt_ms?.max)}</td>
            <td className={td}>{formatMs(h.rtt_ms?.stddev)}</td>
            <td className={td}>{formatMs(h.jitter_ms?.avg)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function MtrDetail({ r }: { r: TaskResult }) {
  const d = r.data ?? {};
  const hops = mtrHopsOf(d);
  const proto = typeof d.protocol === "string" ? d.protocol.toUpperCase() : "ICMP";
  return (
    <div className="space-y-4" data-testid="mtr-detail">
      <p className="text-sm text-slate-600">
        {proto}
        {isNum(d.port) ? ` port ${d.port}` : ""} to <span className="font-mono">{d.address ?? "—"}</span>,{" "}
        {d.rounds_done ?? d.count ?? "?"} rounds, {d.reached ? "reached" : "not reached"}
      </p>
      <div data-testid="mtr-hops">
        <h4 className="mb-1.5 text-xs font-semibold uppercase tracking-wide text-slate-500">RTT per hop (best–worst, avg)</h4>
        <MtrHopChart hops={hops} />
      </div>
      <MtrTable hops={hops} />
    </div>
  );
}
