import type { Check } from "../api/types";

const LAYER_LABEL: Record<string, string> = { dns: "DNS", tcp: "TCP", tls: "TLS", http: "HTTP" };
const TONE: Record<string, string> = {
  none: "border-emerald-200 bg-emerald-50 text-emerald-800",
  regional: "border-amber-200 bg-amber-50 text-amber-900",
  global: "border-red-200 bg-red-50 text-red-800",
};
const CHIP: Record<string, string> = {
  ok: "bg-emerald-100 text-emerald-800",
  fail: "bg-red-100 text-red-800",
};

/**
 * The verdict across check types (chalicelib/verdict.py): which layer fails, DNS → TCP → TLS →
 * HTTP, and whether from every agent or some ("TLS fails from Singapore only"), with each agent's
 * layers as chips. Nothing is drawn until an agent has a verdict, nor when everything passed on a
 * single check type or only DNS was tested (ping, traceroute, mtr): the summary lines say as much.
 */
export function LayerVerdict({ check }: { check: Pick<Check, "verdict" | "check_types"> }) {
  const v = check.verdict;
  if (!v || v.scope === "pending" || !v.text) return null;
  // All passing says something only when layers past DNS were tested by more than one type.
  const beyondDns = Object.keys(v.layers ?? {}).some((layer) => layer !== "dns");
  if (v.scope === "none" && ((check.check_types ?? []).length < 2 || !beyondDns)) return null;
  return (
    <div data-testid="layer-verdict" data-scope={v.scope} data-layer={v.failing_layer ?? ""} className={`rounded-md border px-3 py-2 text-sm ${TONE[v.scope] ?? ""}`}>
      <p data-testid="layer-verdict-text" className="font-medium">
        {v.scope === "global" ? "Global: " : v.scope === "regional" ? "Regional: " : ""}
        {v.text}
      </p>
      {v.scope !== "none" && (
        <ul className="mt-1.5 space-y-0.5">
          {v.agents.map((a) => (
            <li key={a.agent.id} data-testid="layer-agent" data-failing={a.failing_layer ?? ""} className="flex flex-wrap items-center gap-1.5 text-xs">
              <span className="min-w-[8rem] text-slate-700">
                {a.agent.location} <span className="text-slate-500">({a.agent.name})</span>
              </span>
              {Object.entries(a.layers).map(([layer, state]) => (
                <span key={layer} data-testid={`layer-${layer}`} data-state={state} className={`rounded px-1.5 py-0.5 font-mono ${CHIP[state] ?? ""}`}>
                  {LAYER_LABEL[layer] ?? layer} {state === "ok" ? "✓" : "✗"}
                </span>
              ))}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
