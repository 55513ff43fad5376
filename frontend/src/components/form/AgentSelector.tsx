import { useMemo } from "react";
import type { Agent } from "../../api/types";
import { useAgents } from "../../hooks/useAgents";
import type { SelectionMode } from "../../lib/buildRequest";
import { FieldError } from "../FieldError";
import { OnlineDot } from "../StatusBadge";

function Chip({ checked, onChange, children }: { checked: boolean; onChange: () => void; children: React.ReactNode }) {
  return (
    <label className="flex items-center gap-1.5 rounded border border-slate-200 bg-white px-2 py-1 text-sm">
      <input type="checkbox" checked={checked} onChange={onChange} />
      {children}
    </label>
  );
}

/** All online agents, some locations, or picked agents. */
export function AgentSelector({
  mode,
  agents,
  locations,
  errors,
  onMode,
  onToggleAgent,
  onToggleLocation,
}: {
  mode: SelectionMode;
  agents: string[];
  locations: string[];
  errors: Record<string, string[]>;
  onMode: (m: SelectionMode) => void;
  onToggleAgent: (id: string) => void;
  onToggleLocation: (loc: string) => void;
}) {
  const agentsQ = useAgents();
  const list: Agent[] = useMemo(() => agentsQ.data?.items ?? [], [agentsQ.data]);
  const allLocations = useMemo(() => Array.from(new Set(list.map((a) => a.location).filter(Boolean))).sort(), [list]);
  const online = list.filter((a) => a.status === "online").length;
  const modes: [SelectionMode, string][] = [
    ["all", `All online agents${agentsQ.data ? ` (${online})` : ""}`],
    ["locations", "By location"],
    ["agents", "Pick agents"],
  ];
  return (
    <fieldset>
      <legend className="mb-1 text-sm font-medium text-slate-700">Agents</legend>
      <div className="flex flex-wrap gap-4 text-sm" role="radiogroup">
        {modes.map(([m, label]) => (
          <label key={m} className="flex items-center gap-1.5">
            <input type="radio" name="mode" value={m} data-testid={`agent-mode-${m}`} checked={mode === m} onChange={() => onMode(m)} />
            {label}
          </label>
        ))}
      </div>
      {agentsQ.isError && mode !== "all" && <p className="mt-2 text-xs text-red-600">Could not load agents: {agentsQ.error.message}</p>}
      {mode === "locations" && (
        <div className="mt-2 flex flex-wrap gap-2" data-testid="location-picker">
          {allLocations.length === 0 && !agentsQ.isLoading && <span className="text-xs text-slate-500">No locations known.</span>}
          {allLocations.map((loc) => (
            <Chip key={loc} checked={locations.includes(loc)} onChange={() => onToggleLocation(loc)}>
              {loc}
            </Chip>
          ))}
        </div>
      )}
      {mode === "agents" && (
        <div className="mt-2 flex flex-wrap gap-2" data-testid="agent-picker">
          {list.length === 0 && !agentsQ.isLoading && <span className="text-xs text-slate-500">No agents registered.</span>}
          {list.map((a) => (
            <Chip key={a.id} checked={agents.includes(a.id)} onChange={() => onToggleAgent(a.id)}>
              <OnlineDot status={a.status} />
              {a.name}
              <span className="text-xs text-slate-400">{a.location}</span>
            </Chip>
          ))}
        </div>
      )}
      <FieldError field="agents" messages={errors.agents} />
      <FieldError field="locations" messages={errors.locations} />
      <FieldError field="limit" messages={errors.limit} />
    </fieldset>
  );
}
