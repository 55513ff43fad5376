import { Fragment, useMemo, useState } from "react";
import type { Agent, AgentRef, Check, TaskResult } from "../api/types";
import { checkLabel } from "../lib/checkTypes";
import { headline, outcomeOf, shortError } from "../lib/format";
import { ResultDetail } from "./details/Details";
import { OnlineDot, StatusBadge } from "./StatusBadge";

interface Row {
  agent: AgentRef;
  byType: Record<string, TaskResult>;
}

export function groupByAgent(results: TaskResult[]): Row[] {
  const rows = new Map<string, Row>();
  for (const r of results) {
    const id = r.agent?.id ?? "unknown";
    let row = rows.get(id);
    if (!row) {
      row = { agent: r.agent ?? { id, name: "unknown", location: "" }, byType: {} };
      rows.set(id, row);
    }
    row.byType[r.check_type] = r;
  }
  return [...rows.values()].sort((a, b) => a.agent.name.localeCompare(b.agent.name));
}

export function ResultCell({
  r,
  expanded,
  onToggle,
}: {
  r: TaskResult | undefined;
  expanded: boolean;
  onToggle: () => void;
}) {
  if (!r) return <span className="text-xs text-slate-400">—</span>;
  const outcome = outcomeOf(r);
  const text =
    outcome === "pending"
      ? "queued"
      : outcome === "running"
        ? "running…"
        : outcome === "failed" && r.error
          ? shortError(r.error.message)
          : headline(r);
  const badgeLabel = outcome === "failed" && r.error?.kind ? r.error.kind.replace(/_/g, " ") : undefined;
  const canExpand = outcome === "ok" || outcome === "failed";
  return (
    <button
      type="button"
      onClick={onToggle}
      disabled={!canExpand}
      aria-expanded={expanded}
      data-testid={`result-cell-${r.agent.id}-${r.check_type}`}
      data-check-type={r.check_type}
      data-status={outcome}
      className={`flex w-full flex-col items-start gap-1 rounded-md px-2 py-1.5 text-left transition enabled:hover:bg-slate-100 ${
        expanded ? "bg-teal-50 ring-1 ring-teal-600/30" : ""
      }`}
    >
      <StatusBadge status={outcome} label={badgeLabel} />
      <span
        data-testid="cell-headline"
        className={`max-w-[24rem] truncate font-mono text-xs tabular-nums ${outcome === "failed" ? "text-red-700" : "text-slate-700"}`}
        title={outcome === "failed" && r.error ? r.error.message : text}
      >
        {text || "\u00a0"}
      </span>
    </button>
  );
}

export function ResultsTable({ check, agents }: { check: Check; agents?: Agent[] }) {
  const [expanded, setExpanded] = useState<string | null>(null);
  const rows = useMemo(() => groupByAgent(check.results ?? []), [check.results]);
  const agentStatus = useMemo(() => new Map((agents ?? []).map((a) => [a.id, a.status])), [agents]);
  const types = check.check_types?.length ? check.check_types : [...new Set((check.results ?? []).map((r) => r.check_type))];

  return (
    <div className="overflow-x-auto">
      <table data-testid="results-table" className="w-full border-collapse text-sm">
        <thead>
          <tr className="border-b border-slate-200">
            <th className="px-3 py-2 text-left text-xs font-semibold uppercase tracking-wide text-slate-500">Agent</th>
            {types.map((t) => (
              <th key={t} className="px-3 py-2 text-left text-xs font-semibold uppercase tracking-wide text-slate-500">
                {checkLabel(t)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => {
            const expandedType = expanded?.startsWith(`${row.agent.id}:`) ? expanded.slice(row.agent.id.length + 1) : null;
            const open = expandedType ? row.byType[expandedType] : undefined;
            return (
              <Fragment key={row.agent.id}>
                <tr data-testid={`result-row-${row.agent.id}`} data-agent-name={row.agent.name} className="border-b border-slate-100">
                  <td className="px-3 py-2 align-top">
                    <div className="flex items-center gap-2">
                      <OnlineDot status={agentStatus.get(row.agent.id)} />
                      <span className="font-medium text-slate-800" data-testid="agent-name">
                        {row.agent.name}
                      </span>
                    </div>
                    <div className="pl-4 text-xs text-slate-500">{row.agent.location}</div>
                  </td>
                  {types.map((t) => {
                    const key = `${row.agent.id}:${t}`;
                    return (
                      <td key={t} className="px-1 py-1 align-top">
                        <ResultCell
                          r={row.byType[t]}
                          expanded={expanded === key}
                          onToggle={() => setExpanded((cur) => (cur === key ? null : key))}
                        />
                      </td>
                    );
                  })}
                </tr>
                {open && (
                  <tr className="border-b border-slate-200 bg-slate-50/70">
                    <td colSpan={types.length + 1} className="px-4 py-4">
                      <ResultDetail r={open} />
                    </td>
                  </tr>
                )}
              </Fragment>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
