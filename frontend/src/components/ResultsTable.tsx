import { Fragment, useMemo, useState } from "react";
import type { Agent, AgentRef, Check, TaskResult } from "../api/types";
import { NARROW, useMediaQuery } from "../hooks/useMediaQuery";
import { checkLabel } from "../lib/checkTypes";
import { addressesOf, pingMinAvgMax, sharedScales, sortRows, type SortKey } from "../lib/compare";
import { formatMs, headline, outcomeOf, shortError } from "../lib/format";
import { ResultDetail, type Scales } from "./details/Details";
import { OnlineDot, StatusBadge } from "./StatusBadge";

export interface Row {
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

const canExpand = (r: TaskResult | undefined) => {
  const o = outcomeOf(r);
  return Boolean(r) && (o === "ok" || o === "failed");
};

export function ResultCell({ r, expanded, onToggle }: { r: TaskResult | undefined; expanded: boolean; onToggle: () => void }) {
  if (!r) return <span className="text-xs text-slate-400">—</span>;
  const outcome = outcomeOf(r);
  const text =
    outcome === "pending" ? "queued" : outcome === "running" ? "running…" : outcome === "failed" && r.error ? shortError(r.error.message) : headline(r);
  const badgeLabel = outcome === "failed" && r.error?.kind ? r.error.kind.replace(/_/g, " ") : undefined;
  return (
    <button
      type="button"
      onClick={onToggle}
      disabled={!canExpand(r)}
      aria-expanded={expanded}
      data-testid={`result-cell-${r.agent.id}-${r.check_type}`}
      data-check-type={r.check_type}
      data-status={outcome}
      className={`flex w-full min-w-0 flex-col items-start gap-1 rounded-md px-2 py-1.5 text-left transition enabled:hover:bg-slate-100 ${
        expanded ? "bg-teal-50 ring-1 ring-teal-600/30" : ""
      }`}
    >
      <StatusBadge status={outcome} label={badgeLabel} />
      <span
        data-testid="cell-headline"
        className={`max-w-full truncate font-mono text-xs tabular-nums sm:max-w-[24rem] ${outcome === "failed" ? "text-red-700" : "text-slate-700"}`}
        title={outcome === "failed" && r.error ? r.error.message : text}
      >
        {text || "\u00a0"}
      </span>
    </button>
  );
}

function MinAvgMax({ r }: { r: TaskResult | undefined }) {
  const m = pingMinAvgMax(r);
  if (!m) return <span className="text-xs text-slate-400">—</span>;
  return (
    <span className="font-mono text-xs tabular-nums text-slate-700" data-testid="ping-min-avg-max">
      {formatMs(m.min)} / {formatMs(m.avg)} / {formatMs(m.max)}
    </span>
  );
}

function Addresses({ row }: { row: Row }) {
  const addrs = addressesOf(Object.values(row.byType));
  return (
    <span className="break-all font-mono text-xs text-slate-600" data-testid="agent-address">
      {addrs.length ? addrs.join(", ") : "—"}
    </span>
  );
}

interface OpenState {
  isOpen: (agentId: string, type: string) => boolean;
  toggle: (agentId: string, type: string) => void;
}

function ResultsToolbar({
  types,
  sort,
  onSort,
  expandAll,
  onExpandAll,
}: {
  types: string[];
  sort: SortKey;
  onSort: (k: SortKey) => void;
  expandAll: boolean;
  onExpandAll: (on: boolean) => void;
}) {
  return (
    <div className="mb-2 flex flex-wrap items-center gap-3 text-xs text-slate-600">
      <label className="flex items-center gap-1.5">
        Sort by
        <select
          data-testid="sort-by"
          value={sort}
          onChange={(e) => onSort(e.target.value as SortKey)}
          className="rounded border border-slate-300 bg-white px-1.5 py-0.5 text-xs"
        >
          <option value="name">agent name</option>
          {types.map((t) => (
            <option key={t} value={`latency:${t}`}>
              {checkLabel(t)} latency
            </option>
          ))}
        </select>
      </label>
      <button
        type="button"
        data-testid="expand-all"
        aria-pressed={expandAll}
        onClick={() => onExpandAll(!expandAll)}
        className="rounded border border-slate-300 bg-white px-2 py-0.5 font-medium text-slate-700 hover:bg-slate-50"
      >
        {expandAll ? "Collapse all" : "Expand all"}
      </button>
      <span className="text-slate-400">Charts share one scale across agents.</span>
    </div>
  );
}

function TableView({ rows, types, open, scales, agentStatus }: { rows: Row[]; types: string[]; open: OpenState; scales: Scales; agentStatus: Map<string, string> }) {
  const th = "px-3 py-2 text-left text-xs font-semibold uppercase tracking-wide text-slate-500";
  const hasPing = types.includes("ping");
  const colSpan = types.length + 2 + (hasPing ? 1 : 0);
  return (
    <div className="overflow-x-auto">
      <table data-testid="results-table" className="w-full border-collapse text-sm">
        <thead>
          <tr className="border-b border-slate-200">
            <th className={th}>Agent</th>
            <th className={th}>Address</th>
            {types.map((t) => (
              <Fragment key={t}>
                <th className={th}>{checkLabel(t)}</th>
                {t === "ping" && <th className={th}>RTT min / avg / max</th>}
              </Fragment>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <Fragment key={row.agent.id}>
              <tr data-testid={`result-row-${row.agent.id}`} data-agent-name={row.agent.name} className="border-b border-slate-100">
                <td className="px-3 py-2 align-top">
                  <AgentName row={row} status={agentStatus.get(row.agent.id)} />
                </td>
                <td className="px-3 py-2 align-top">
                  <Addresses row={row} />
                </td>
                {types.map((t) => (
                  <Fragment key={t}>
                    <td className="px-1 py-1 align-top">
                      <ResultCell r={row.byType[t]} expanded={open.isOpen(row.agent.id, t)} onToggle={() => open.toggle(row.agent.id, t)} />
                    </td>
                    {t === "ping" && (
                      <td className="px-3 py-2 align-top">
                        <MinAvgMax r={row.byType.ping} />
                      </td>
                    )}
                  </Fragment>
                ))}
              </tr>
              {types
                .filter((t) => open.isOpen(row.agent.id, t))
                .map((t) => (
                  <tr key={t} className="border-b border-slate-200 bg-slate-50/70">
                    <td colSpan={colSpan} className="px-4 py-4">
                      <ResultDetail r={row.byType[t]} scales={scales} />
                    </td>
                  </tr>
                ))}
            </Fragment>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function AgentName({ row, status }: { row: Row; status: string | undefined }) {
  return (
    <>
      <div className="flex items-center gap-2">
        <OnlineDot status={status} />
        <span className="font-medium text-slate-800" data-testid="agent-name">
          {row.agent.name}
        </span>
      </div>
      <div className="pl-4 text-xs text-slate-500">{row.agent.location}</div>
    </>
  );
}

/** The phone layout: one card per agent, a line per check type, details inside the card. */
function CardView({ rows, types, open, scales, agentStatus }: { rows: Row[]; types: string[]; open: OpenState; scales: Scales; agentStatus: Map<string, string> }) {
  return (
    <ul data-testid="results-cards" className="space-y-3">
      {rows.map((row) => (
        <li key={row.agent.id} data-testid={`result-row-${row.agent.id}`} data-agent-name={row.agent.name} className="rounded-lg border border-slate-200 p-2">
          <div className="flex items-start justify-between gap-2 px-1">
            <div>
              <AgentName row={row} status={agentStatus.get(row.agent.id)} />
            </div>
            <Addresses row={row} />
          </div>
          <dl className="mt-1 divide-y divide-slate-100">
            {types.map((t) => (
              <div key={t} className="py-1">
                <dt className="px-2 text-[11px] font-semibold uppercase tracking-wide text-slate-500">
                  {checkLabel(t)}
                  {t === "ping" && pingMinAvgMax(row.byType.ping) && (
                    <span className="ml-2 font-normal normal-case tracking-normal">
                      min/avg/max <MinAvgMax r={row.byType.ping} />
                    </span>
                  )}
                </dt>
                <dd className="min-w-0">
                  <ResultCell r={row.byType[t]} expanded={open.isOpen(row.agent.id, t)} onToggle={() => open.toggle(row.agent.id, t)} />
                  {open.isOpen(row.agent.id, t) && (
                    <div className="mt-2 min-w-0 px-1">
                      <ResultDetail r={row.byType[t]} scales={scales} />
                    </div>
                  )}
                </dd>
              </div>
            ))}
          </dl>
        </li>
      ))}
    </ul>
  );
}

export function ResultsTable({ check, agents }: { check: Check; agents?: Agent[] }) {
  const [expanded, setExpanded] = useState<string | null>(null);
  const [expandAll, setExpandAll] = useState(false);
  const [sort, setSort] = useState<SortKey>("name");
  const narrow = useMediaQuery(NARROW);
  const results = useMemo(() => check.results ?? [], [check.results]);
  const rows = useMemo(() => sortRows(groupByAgent(results), sort), [results, sort]);
  const scales = useMemo(() => sharedScales(results), [results]);
  const agentStatus = useMemo(() => new Map((agents ?? []).map((a) => [a.id, a.status])), [agents]);
  const types = check.check_types?.length ? check.check_types : [...new Set(results.map((r) => r.check_type))];
  const byKey = useMemo(() => new Map(rows.map((r) => [r.agent.id, r])), [rows]);

  const open: OpenState = {
    isOpen: (agentId, t) => canExpand(byKey.get(agentId)?.byType[t]) && (expandAll || expanded === `${agentId}:${t}`),
    toggle: (agentId, t) => {
      const key = `${agentId}:${t}`;
      setExpandAll(false);
      setExpanded((cur) => (cur === key && !expandAll ? null : key));
    },
  };
  const View = narrow ? CardView : TableView;
  return (
    <div data-testid="results-view" data-layout={narrow ? "cards" : "table"}>
      <ResultsToolbar types={types} sort={sort} onSort={setSort} expandAll={expandAll} onExpandAll={setExpandAll} />
      <View rows={rows} types={types} open={open} scales={scales} agentStatus={agentStatus} />
    </div>
  );
}
