import { formatMs, isNum } from "../../lib/format";

/**
 * One bar per packet; lost packets (null) are drawn as a red ×. `max` (ms at the top of the axis)
 * is shared by every agent's chart on the page, so their heights compare; it defaults to this chart's own.
 */
export function RttChart({ rtts, max: sharedMax }: { rtts: Array<number | null> | null | undefined; max?: number }) {
  const values = Array.isArray(rtts) ? rtts : [];
  if (values.length === 0) return <p className="text-sm text-slate-500">No per-packet times were reported.</p>;
  const max = Math.max(1, sharedMax ?? 0, ...values.filter(isNum));
  const W = 480;
  const H = 140;
  const pad = { l: 44, r: 8, t: 10, b: 22 };
  const innerW = W - pad.l - pad.r;
  const innerH = H - pad.t - pad.b;
  const slot = innerW / values.length;
  const barW = Math.max(2, Math.min(36, slot * 0.7));
  const y = (v: number) => pad.t + innerH - (v / max) * innerH;
  return (
    <svg
      data-testid="rtt-chart"
      data-max-ms={max}
      viewBox={`0 0 ${W} ${H}`}
      className="h-auto w-full max-w-xl"
      role="img"
      aria-label={`Round-trip time per packet, max ${formatMs(max)}`}
    >
      {[0, 0.5, 1].map((f) => (
        <g key={f}>
          <line x1={pad.l} x2={W - pad.r} y1={y(max * f)} y2={y(max * f)} stroke="#e2e8f0" />
          <text x={pad.l - 4} y={y(max * f) + 3} textAnchor="end" fontSize="9" fill="#64748b">
            {formatMs(max * f)}
          </text>
        </g>
      ))}
      {values.map((v, i) => {
        const cx = pad.l + slot * i + slot / 2;
        return (
          <g key={i} data-testid="rtt-bar" data-lost={!isNum(v)}>
            {isNum(v) ? (
              <rect x={cx - barW / 2} y={y(v)} width={barW} height={Math.max(1, pad.t + innerH - y(v))} rx="2" fill="#0d9488">
                <title>{`#${i + 1}: ${formatMs(v)}`}</title>
              </rect>
            ) : (
              <text x={cx} y={pad.t + innerH - 4} textAnchor="middle" fontSize="12" fill="#dc2626">
                ×<title>{`#${i + 1}: lost`}</title>
              </text>
            )}
            <text x={cx} y={H - 6} textAnchor="middle" fontSize="9" fill="#64748b">
              {i + 1}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
