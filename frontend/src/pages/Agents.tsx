import type { Agent } from "../api/types";
import { RetireAgent } from "../components/RetireAgent";
import { Empty, ErrorState, Loading } from "../components/States";
import { StatusBadge } from "../components/StatusBadge";
import { useAgentStats, useAgents } from "../hooks/useAgents";
import { useNow } from "../hooks/useNow";
import { useTitle } from "../hooks/useTitle";
import { checkLabel } from "../lib/checkTypes";
import { formatDateTime, formatMs, formatRate, relativeTime } from "../lib/format";

function AgentStatsTable({ id }: { id: string }) {
  const q = useAgentStats(id);
  if (q.isPending) return <Loading label="Loading stats…" testId="agent-stats-loading" />;
  if (q.isError) return <p className="text-xs text-red-600" data-testid="agent-stats-error">Stats unavailable: {q.error.message}</p>;
  const entries = Object.entries(q.data.stats ?? {}).filter(([, s]) => (s?.count ?? 0) > 0);
  if (entries.length === 0)
    return (
      <p className="text-xs text-slate-500" data-testid="agent-stats-empty">
        No checks in the last {q.data.window_hours ?? 24} h.
      </p>
    );
  return (
    <div>
      <table className="w-full text-xs" data-testid="agent-stats">
        <thead>
          <tr className="text-left text-slate-500">
            <th className="py-1 pr-2 font-semibold">Type</th>
            <th className="py-1 pr-2 text-right font-semibold">Checks</th>
            <th className="py-1 pr-2 text-right font-semibold" title="successful results">OK</th>
            <th className="py-1 pr-2 text-right font-semibold" title="the target refused, timed out, did not resolve…">
              Target fail
            </th>
            <th className="py-1 pr-2 text-right font-semibold" title="internal errors, agent offline, no result in time">
              Agent fail
            </th>
            <th
              className="py-1 pr-2 text-right font-semibold"
              title="headline latency of successful results: HTTP total, ping average RTT, TCP connect, DNS query time, traceroute RTT to the target"
            >
              Latency
            </th>
            <th className="py-1 text-right font-semibold">p95</th>
          </tr>
        </thead>
        <tbody className="font-mono tabular-nums">
          {entries.map(([type, s]) => (
            <tr key={type} className="border-t border-slate-100" data-testid={`agent-stats-${type}`}>
              <td className="py-1 pr-2 font-sans">{checkLabel(type)}</td>
              <td className="py-1 pr-2 text-right">{s.count}</td>
              <td className="py-1 pr-2 text-right" data-testid="agent-stats-success">
                {formatRate(s.success_rate)}
              </td>
              <td className="py-1 pr-2 text-right" data-testid="agent-stats-target-failures" title={failureKinds(s.failures_by_kind)}>
                {s.target_failures ?? "—"}
              </td>
              <td
                className={`py-1 pr-2 text-right ${s.agent_failures ? "font-semibold text-red-700" : ""}`}
                data-testid="agent-stats-agent-failures"
              >
                {s.agent_failures ?? "—"}
              </td>
              <td className="py-1 pr-2 text-right" data-testid="agent-stats-latency">
                {formatMs(s.latency_avg_ms ?? null)}
              </td>
              <td className="py-1 text-right" data-testid="agent-stats-latency-p95">
                {formatMs(s.latency_p95_ms ?? null)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="mt-1 text-[11px] text-slate-400">
        last {q.data.window_hours} h · latency is the measured value (ping RTT, HTTP total…), not the task duration
      </p>
    </div>
  );
}

function failureKinds(kinds: Record<string, number> | undefined): string | undefined {
  const entries = Object.entries(kinds ?? {});
  return entries.length ? entries.map(([k, n]) => `${k}: ${n}`).join(", ") : undefined;
}

function AgentCard({ agent, now }: { agent: Agent; now: number }) {
  return (
    <article
      data-testid={`agent-card-${agent.id}`}
      data-agent-name={agent.name}
      data-status={agent.status}
      className="agent-card flex flex-col gap-3 rounded-xl border border-slate-200 bg-white p-4 shadow-sm"
    >
      <header className="flex items-start justify-between gap-2">
        <div className="min-w-0">
          <h2 className="truncate text-base font-semibold text-slate-900" data-testid="agent-name">
            {agent.name}
          </h2>
          <p className="text-sm text-slate-500" data-testid="agent-location">
            {agent.location || "—"}
          </p>
        </div>
        <StatusBadge status={agent.status} testId="agent-status" />
      </header>
      <dl className="grid grid-cols-[max-content_1fr] gap-x-3 gap-y-1 text-xs">
        <dt className="text-slate-500">Last heartbeat</dt>
        <dd title={formatDateTime(agent.last_heartbeat)} data-testid="agent-heartbeat">
          {relativeTime(agent.last_heartbeat, now)}
        </dd>
        {agent.region && (
          <>
            <dt className="text-slate-500">Region</dt>
            <dd className="font-mono">{agent.region}</dd>
          </>
        )}
        <dt className="text-slate-500">Version</dt>
        <dd className="font-mono">{agent.version ?? "—"}</dd>
        <dt className="text-slate-500">Clock offset</dt>
        <dd className="font-mono" data-testid="agent-clock">
          {agent.clock_offset_ms == null
            ? "—"
            : `${agent.clock_offset_ms >= 0 ? "+" : ""}${(agent.clock_offset_ms / 1000).toFixed(1)} s`}
          {agent.clock_ok === false && <span className="ml-1 text-red-600">refusing work</span>}
        </dd>
        <dt className="text-slate-500">Running now</dt>
        <dd className="font-mono">{agent.current_tasks ?? 0} tasks</dd>
        <dt className="text-slate-500">Capabilities</dt>
        <dd className="flex flex-wrap gap-1">
          {(agent.capabilities ?? []).length === 0 && "—"}
          {(agent.capabilities ?? []).map((c) => (
            <span key={c} className="rounded bg-slate-100 px-1.5 py-0.5 text-[11px] font-medium text-slate-600">
              {checkLabel(c)}
            </span>
          ))}
        </dd>
      </dl>
      <div className="border-t border-slate-100 pt-2">
        <AgentStatsTable id={agent.id} />
      </div>
      <RetireAgent agent={agent} />
    </article>
  );
}

export default function Agents() {
  const now = useNow(1000);
  const q = useAgents(5000);
  useTitle("Agents");
  const items = q.data?.items ?? [];
  const online = items.filter((a) => a.status === "online").length;
  return (
    <div className="space-y-5">
      <div className="flex flex-wrap items-baseline justify-between gap-2">
        <h1 className="text-2xl font-semibold text-slate-900">Agents</h1>
        {q.data && (
          <p className="text-sm text-slate-500" data-testid="agents-online-count">
            {online} of {items.length} online
          </p>
        )}
      </div>
      {q.isPending ? (
        <Loading label="Loading agents…" testId="agents-loading" />
      ) : q.isError ? (
        <ErrorState error={q.error} title="Could not load agents" onRetry={() => q.refetch()} testId="agents-error" />
      ) : items.length === 0 ? (
        <Empty testId="agents-empty">
          No agents have registered yet. Start one with <code className="font-mono">python -m agent</code> and a registration token.
        </Empty>
      ) : (
        <div className="grid gap-4 sm:grid-cols-2 lg:grid-cols-3" data-testid="agents-list">
          {[...items]
            .sort((a, b) => (a.status === b.status ? a.name.localeCompare(b.name) : a.status === "online" ? -1 : 1))
            .map((a) => (
              <AgentCard key={a.id} agent={a} now={now} />
            ))}
        </div>
      )}
    </div>
  );
}
