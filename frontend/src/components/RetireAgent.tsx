import { useState, type FormEvent } from "react";
import type { Agent } from "../api/types";
import { useRetireAgent } from "../hooks/useAgents";
import { clearAdminToken, getAdminToken, setAdminToken } from "../lib/adminToken";

/**
 * "Retire" on an agent card: DELETE /api/agents/{id} with the admin token. The token is asked
 * for once per tab and kept in sessionStorage; a refused token is forgotten and asked for again.
 */
export function RetireAgent({ agent }: { agent: Agent }) {
  const [open, setOpen] = useState(false);
  const [token, setToken] = useState("");
  const [stored, setStored] = useState<string | null>(null);
  const retire = useRetireAgent();

  function start() {
    setStored(getAdminToken());
    setToken("");
    retire.reset();
    setOpen(true);
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    const adminToken = stored ?? token.trim();
    if (!adminToken) return;
    retire.mutate(
      { id: agent.id, adminToken },
      {
        onSuccess: () => {
          setAdminToken(adminToken);
          setOpen(false);
        },
        onError: (err) => {
          if (err.status === 401 || err.status === 403) {
            clearAdminToken();
            setStored(null);
          }
        },
      },
    );
  }

  if (!open)
    return (
      <button
        type="button"
        onClick={start}
        className="self-start text-xs font-medium text-red-700 hover:underline"
        data-testid="agent-retire"
      >
        Retire…
      </button>
    );
  const refused = retire.error && (retire.error.status === 401 || retire.error.status === 403);
  return (
    <form onSubmit={submit} className="flex flex-col gap-2 rounded-lg bg-red-50 p-2 text-xs" data-testid="agent-retire-form">
      <p className="text-red-900">
        Retire <strong>{agent.name}</strong>? Its stream, heartbeat and token go, its open tasks fail, and its past
        results stay. The name is free for a new agent.
      </p>
      {stored === null && (
        <label className="flex flex-col gap-1">
          <span className="font-medium text-slate-700">Admin token (kept for this tab only)</span>
          <input
            type="password"
            autoComplete="off"
            value={token}
            onChange={(e) => setToken(e.target.value)}
            className="rounded border border-slate-300 px-2 py-1 font-mono"
            data-testid="agent-retire-token"
            aria-invalid={refused ? true : undefined}
          />
        </label>
      )}
      {retire.error && (
        <p className="text-red-700" role="alert" data-testid="agent-retire-error">
          {refused ? `Admin token refused: ${retire.error.message}` : `Could not retire: ${retire.error.message}`}
        </p>
      )}
      <div className="flex gap-2">
        <button
          type="submit"
          disabled={retire.isPending || (stored === null && !token.trim())}
          className="rounded bg-red-700 px-2 py-1 font-semibold text-white disabled:opacity-50"
          data-testid="agent-retire-confirm"
        >
          {retire.isPending ? "Retiring…" : "Retire agent"}
        </button>
        <button type="button" onClick={() => setOpen(false)} className="px-2 py-1 text-slate-600 hover:underline">
          Cancel
        </button>
      </div>
    </form>
  );
}
