import type { ReactNode } from "react";
import type { TaskResult } from "../../api/types";
import { formatBytes, formatDateTime, formatMs, formatPct, isNum } from "../../lib/format";
import { HopTimeline, hopsOf } from "./HopTimeline";
import { MtrDetail } from "./MtrDetail";
import { RttChart } from "./RttChart";
import { DnsDepth } from "./DnsDepth";
import { Assertions, TlsExtras } from "./TlsChain";
import { Waterfall } from "./Waterfall";

/** The page-wide scales (ms) every agent's chart is drawn to, so their lengths compare. */
export interface Scales {
  http?: number;
  ping?: number;
}

function Section({ title, children, testId }: { title: string; children: ReactNode; testId?: string }) {
  return (
    <div data-testid={testId} className="min-w-0">
      <h4 className="mb-1.5 text-xs font-semibold uppercase tracking-wide text-slate-500">{title}</h4>
      {children}
    </div>
  );
}

function KV({ rows }: { rows: [string, ReactNode][] }) {
  return (
    <dl className="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
      {rows.map(([k, v]) => (
        <div key={k} className="contents">
          <dt className="text-slate-500">{k}</dt>
          <dd className="min-w-0 break-words font-mono text-slate-800">{v ?? "—"}</dd>
        </div>
      ))}
    </dl>
  );
}

function show(v: unknown): ReactNode {
  if (v === null || v === undefined || v === "") return "—";
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v)) return v.map((x) => show(x)).join(", ");
  if (typeof v === "object") {
    return Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${k}=${typeof x === "object" ? JSON.stringify(x) : String(x)}`)
      .join(", ");
  }
  return String(v);
}

const th = "px-2 py-1 text-left text-xs font-semibold text-slate-500";
const td = "px-2 py-1 align-top font-mono text-xs text-slate-800";

export function HttpDetail({ r, scales }: { r: TaskResult; scales?: Scales }) {
  const d = r.data ?? {};
  const hops = hopsOf(d);
  const redirects: Array<{ url: string; status_code: number }> = Array.isArray(d.redirects) ? d.redirects : [];
  const tls = d.tls && typeof d.tls === "object" ? d.tls : null;
  const headers: Record<string, unknown> = d.headers && typeof d.headers === "object" ? d.headers : {};
  const days = tls && isNum(tls.days_left) ? (tls.days_left as number) : null;
  return (
    <div className="grid gap-5 lg:grid-cols-2">
      <Section title="Timing" testId="http-timing">
        <Waterfall timings={d.timings_ms} scale={scales?.http} hopCount={hops.length} />
      </Section>
      {hops.length > 1 && (
        <Section title={`Per request (${hops.length})`} testId="http-hops">
          <HopTimeline hops={hops} />
        </Section>
      )}
      <Section title="Response">
        <KV
          rows={[
            ["Status", d.status_code != null ? `${d.status_code} ${d.reason ?? ""}`.trim() : "—"],
            ["HTTP version", show(d.http_version)],
            ["Final URL", show(d.final_url)],
            ["Address", show(d.address ?? r.address ?? d.resolved_address)],
            ...(d.host_unicode && d.host && d.host_unicode !== d.host ? ([["Host", `${d.host_unicode} (${d.host})`]] as [string, ReactNode][]) : []),
            ["Body", formatBytes(d.body_bytes)],
          ]}
        />
      </Section>
      <Section title={`Redirects (${redirects.length})`} testId="redirect-chain">
        {redirects.length === 0 ? (
          <p className="text-sm text-slate-500">No redirects.</p>
        ) : (
          <ol className="space-y-1 text-xs">
            {redirects.map((h, i) => (
              <li key={i} className="flex gap-2 font-mono" data-testid="redirect-hop">
                <span className="rounded bg-amber-100 px-1.5 text-amber-800">{h.status_code}</span>
                <span className="break-all">{h.url}</span>
              </li>
            ))}
            {d.final_url && (
              <li className="flex gap-2 font-mono">
                <span className="rounded bg-emerald-100 px-1.5 text-emerald-800">{d.status_code}</span>
                <span className="break-all">{d.final_url}</span>
              </li>
            )}
          </ol>
        )}
      </Section>
      <Section title="TLS" testId="tls-details">
        {!tls ? (
          <p className="text-sm text-slate-500">No TLS (plain HTTP).</p>
        ) : (
          <KV
            rows={[
              [
                "Verified",
                tls.verified === false ? (
                  <span className="text-red-700">no{tls.verify_error ? `: ${tls.verify_error}` : ""}</span>
                ) : tls.verified ? (
                  <span className="text-emerald-700">yes</span>
                ) : (
                  "—"
                ),
              ],
              ["Version", show(tls.version)],
              ["Cipher", show(tls.cipher)],
              ["Subject", show(tls.subject)],
              ["Issuer", show(tls.issuer)],
              ["Expires", show(tls.not_after)],
              [
                "Days left",
                days === null ? "—" : (
                  <span
                    data-testid="tls-days-left"
                    className={days < 0 ? "text-red-700" : days < 14 ? "text-amber-700" : "text-emerald-700"}
                  >
                    {days}
                  </span>
                ),
              ],
              ["SAN", show(tls.san)],
            ]}
          />
        )}
        {tls && <TlsExtras tls={tls} />}
      </Section>
      {Array.isArray(d.assertions) && d.assertions.length > 0 && (
        <Section title={`Assertions (${d.assertions.filter((a: { passed: boolean }) => a.passed).length}/${d.assertions.length} passed)`}>
          <Assertions items={d.assertions} />
        </Section>
      )}
      <Section title="Headers" testId="http-headers">
        {Object.keys(headers).length === 0 ? (
          <p className="text-sm text-slate-500">No headers recorded.</p>
        ) : (
          <table className="w-full min-w-0">
            <tbody>
              {Object.entries(headers).map(([k, v]) => (
                <tr key={k} className="border-t border-slate-100">
                  <td className={`${td} text-slate-500`}>{k}</td>
                  <td className={`${td} break-all`}>{show(v)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </div>
  );
}

/** ping over tcp/udp: the port, how it answered (syn_ack, rst, ...) and so whether it is open. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function probeRows(d: Record<string, any>): [string, ReactNode][] {
  if (d.protocol !== "tcp" && d.protocol !== "udp") return [];
  const replies = d.replies && typeof d.replies === "object" ? (d.replies as Record<string, number>) : {};
  const answers = Object.entries(replies).map(([k, n]) => `${k.replace("_", "-")} ×${n}`);
  return [
    ["Protocol", `${String(d.protocol).toUpperCase()} port ${show(d.port)}`],
    ["Answers", answers.join(", ") || "—"],
    ["Port", show(d.port_state)],
  ];
}

export function PingDetail({ r, scales }: { r: TaskResult; scales?: Scales }) {
  const d = r.data ?? {};
  const rtt = d.rtt_ms ?? {};
  return (
    <div className="grid gap-5 lg:grid-cols-[2fr_1fr]">
      <Section title="RTT per packet" testId="ping-chart">
        <RttChart rtts={d.rtts_ms} max={scales?.ping} />
      </Section>
      <Section title="Statistics">
        <KV
          rows={[
            ["Address", show(d.address)],
            ...probeRows(d),
            ["Sent / received", `${show(d.packets_sent)} / ${show(d.packets_received)}`],
            ["Loss", formatPct(d.loss_pct, 1)],
            ["Min", formatMs(rtt.min)],
            ["Avg", formatMs(rtt.avg)],
            ["Max", formatMs(rtt.max)],
            ["Std dev", formatMs(rtt.stddev)],
          ]}
        />
      </Section>
    </div>
  );
}

export function DnsDetail({ r }: { r: TaskResult }) {
  const d = r.data ?? {};
  const answers: Array<{ name: string; type: string; ttl: number; value: string }> = Array.isArray(d.answers) ? d.answers : [];
  return (
    <div className="space-y-3">
      <KV
        rows={[
          ["Record type", show(d.record_type)],
          ["Resolver", show(d.resolver)],
          ["Rcode", show(d.rcode)],
          ["Query time", formatMs(d.query_time_ms)],
          ...(d.note ? ([["Note", <span data-testid="dns-note">{String(d.note)}</span>]] as [string, ReactNode][]) : []),
        ]}
      />
      <DnsDepth d={d} />
      <Section title={`Answers (${answers.length})`} testId="dns-answers">
        {answers.length === 0 ? (
          <p className="text-sm text-slate-500">No answers.</p>
        ) : (
          <table className="w-full min-w-0">
            <thead>
              <tr>
                <th className={th}>Name</th>
                <th className={th}>Type</th>
                <th className={th}>TTL</th>
                <th className={th}>Value</th>
              </tr>
            </thead>
            <tbody>
              {answers.map((a, i) => (
                <tr key={i} className="border-t border-slate-100" data-testid="dns-answer">
                  <td className={td}>{a.name}</td>
                  <td className={td}>{a.type}</td>
                  <td className={td}>{a.ttl}</td>
                  <td className={`${td} break-all`}>{show(a.value)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </div>
  );
}

export function TcpDetail({ r }: { r: TaskResult }) {
  const d = r.data ?? {};
  return (
    <KV
      rows={[
        ["Address", show(d.address)],
        ["Port", show(d.port)],
        ["Connect", formatMs(d.connect_ms)],
      ]}
    />
  );
}

export function TracerouteDetail({ r }: { r: TaskResult }) {
  const d = r.data ?? {};
  const hops: Array<{ ttl: number; address: string | null; hostname: string | null; rtts_ms: Array<number | null>; loss_pct: number }> =
    Array.isArray(d.hops) ? d.hops : [];
  return (
    <div className="space-y-3">
      <KV
        rows={[
          ["Destination", show(d.address)],
          ["Protocol", `${String(d.protocol ?? "icmp").toUpperCase()}${isNum(d.port) ? ` port ${d.port}` : ""}`],
          ["Reached", show(d.reached)],
        ]}
      />
      <Section title={`Hops (${hops.length})`} testId="traceroute-hops">
        <table className="w-full">
          <thead>
            <tr>
              <th className={th}>#</th>
              <th className={th}>Address</th>
              <th className={th}>Hostname</th>
              <th className={th}>RTTs</th>
              <th className={th}>Loss</th>
            </tr>
          </thead>
          <tbody>
            {hops.map((h, i) => (
              <tr key={i} className="border-t border-slate-100" data-testid="traceroute-hop">
                <td className={td}>{h.ttl}</td>
                <td className={td}>{h.address ?? "*"}</td>
                <td className={`${td} break-all`}>{h.hostname ?? ""}</td>
                <td className={td}>
                  {Array.isArray(h.rtts_ms) ? h.rtts_ms.map((x) => (isNum(x) ? formatMs(x) : "*")).join("  ") : "—"}
                </td>
                <td className={td}>{formatPct(h.loss_pct)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </div>
  );
}

export function ResultDetail({ r, scales }: { r: TaskResult; scales?: Scales }) {
  const body = (() => {
    if (!r.data) return null;
    switch (r.check_type) {
      case "http":
        return <HttpDetail r={r} scales={scales} />;
      case "ping":
        return <PingDetail r={r} scales={scales} />;
      case "dns":
        return <DnsDetail r={r} />;
      case "tcp":
        return <TcpDetail r={r} />;
      case "traceroute":
        return <TracerouteDetail r={r} />;
      case "mtr":
        return <MtrDetail r={r} />;
      default:
        return null;
    }
  })();
  return (
    <div data-testid="cell-detail" data-check-type={r.check_type} className="space-y-4">
      <div className="flex flex-wrap items-baseline gap-x-4 gap-y-1 text-xs text-slate-500">
        <span>
          <strong className="text-slate-700">{r.agent.name}</strong> · {r.agent.location} · {r.check_type}
        </span>
        <span>duration {formatMs(r.duration_ms)}</span>
        <span>started {formatDateTime(r.started_at)}</span>
        <span>finished {formatDateTime(r.completed_at)}</span>
      </div>
      {r.error && (
        <div data-testid="result-error" className="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
          <span className="font-mono font-semibold">{r.error.kind}</span>: {r.error.message}
        </div>
      )}
      {body ?? (!r.error && <p className="text-sm text-slate-500">No data yet.</p>)}
      {r.data && (
        <details className="text-xs">
          <summary className="cursor-pointer text-slate-500">Raw data</summary>
          <pre className="mt-1 max-h-72 overflow-auto rounded bg-slate-900 p-3 text-slate-100">{JSON.stringify(r.data, null, 2)}</pre>
        </details>
      )}
    </div>
  );
}
