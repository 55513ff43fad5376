import { useMemo, useRef, useState, type FormEvent, type ReactNode } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "react-router";
import { createCheck } from "../api/endpoints";
import type { ApiError } from "../api/client";
import type { Agent, CreateCheckRequest, CreateCheckResponse } from "../api/types";
import { useAgents } from "../hooks/useAgents";
import { useNow } from "../hooks/useNow";
import { CHECK_TYPES, DNS_RECORD_TYPES, HTTP_METHODS, checkLabel } from "../lib/checkTypes";
import { buildRequest, DEFAULT_OPTIONS, validateForm, type FormValues, type OptionValues, type SelectionMode } from "../lib/buildRequest";
import { mapFieldErrors } from "../lib/fieldErrors";
import { formatWait } from "../lib/format";
import { TARGET_KIND_LABEL, validateTarget } from "../lib/validateTarget";
import { FieldError } from "./FieldError";
import { OnlineDot } from "./StatusBadge";

const inputCls =
  "block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm shadow-sm placeholder:text-slate-400 focus:border-teal-600 focus:outline-none focus:ring-2 focus:ring-teal-600/20 aria-[invalid=true]:border-red-400 aria-[invalid=true]:ring-red-200";
const labelCls = "block text-xs font-medium text-slate-600 mb-1";

export function RateLimitNotice({
  limit,
  testId = "rate-limit-error",
}: {
  limit: { until: number; known: boolean };
  testId?: string;
}) {
  const now = useNow(1000);
  const left = Math.max(0, Math.ceil((limit.until - now) / 1000));
  if (left <= 0) return null;
  return (
    <div data-testid={testId} role="alert" className="rounded-md border border-amber-300 bg-amber-50 px-3 py-2 text-sm text-amber-900">
      Rate limit reached. You can run another check in{" "}
      <strong data-testid="retry-after-seconds" data-seconds={left}>
        {limit.known ? "" : "about "}
        {formatWait(left)}
      </strong>{" "}
      (at {new Date(limit.until).toLocaleTimeString()}).
    </div>
  );
}

/** When a 429 allows the next try; without a Retry-After we guess 60 s (and say so). */
export function retryAt(err: ApiError, now = Date.now()): { until: number; known: boolean } {
  return { until: now + (err.retryAfter ?? 60) * 1000, known: err.retryAfter !== null };
}

export function NewCheckForm({ initial }: { initial?: Partial<FormValues> }) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const agentsQ = useAgents();
  const now = useNow(1000);
  const targetRef = useRef<HTMLInputElement>(null);

  const [target, setTarget] = useState(initial?.target ?? "");
  const [targetTouched, setTargetTouched] = useState(false);
  const [checks, setChecks] = useState<string[]>(initial?.checks ?? ["http", "ping"]);
  const [options, setOptions] = useState<OptionValues>(initial?.options ?? DEFAULT_OPTIONS);
  const [mode, setMode] = useState<SelectionMode>(initial?.mode ?? "all");
  const [agents, setAgents] = useState<string[]>(initial?.agents ?? []);
  const [locations, setLocations] = useState<string[]>(initial?.locations ?? []);
  const [advancedOpen, setAdvancedOpen] = useState(false);
  const [fieldErrors, setFieldErrors] = useState<Record<string, string[]>>({});
  const [formErrors, setFormErrors] = useState<string[]>([]);
  const [rateLimit, setRateLimit] = useState<{ until: number; known: boolean } | null>(null);

  const live = validateTarget(target);
  const showLiveTargetError = !live.ok && (target.trim() !== "" || targetTouched);
  const targetErrors = fieldErrors.target ?? (showLiveTargetError && !live.ok ? [live.message] : null);

  const agentList: Agent[] = agentsQ.data?.items ?? [];
  const allLocations = useMemo(
    () => Array.from(new Set(agentList.map((a) => a.location).filter(Boolean))).sort(),
    [agentList],
  );
  const onlineCount = agentList.filter((a) => a.status === "online").length;

  const clearError = (field: string) =>
    setFieldErrors((prev) => {
      if (!(field in prev)) return prev;
      const next = { ...prev };
      delete next[field];
      return next;
    });

  const showErrors = (details: { field?: string; message: string }[], fallback?: string) => {
    const mapped = mapFieldErrors(details, fallback);
    setFieldErrors(mapped.fields);
    setFormErrors(mapped.form);
    if (Object.keys(mapped.fields).some((f) => f.startsWith("options"))) setAdvancedOpen(true);
    if (mapped.fields.target) targetRef.current?.focus();
  };

  const mutation = useMutation<CreateCheckResponse, ApiError, CreateCheckRequest>({
    mutationFn: (body) => createCheck(body),
    onSuccess: (res) => {
      queryClient.invalidateQueries({ queryKey: ["checks"] });
      navigate(`/results/${encodeURIComponent(res.check_id)}`);
    },
    onError: (err) => {
      if (err.status === 429) {
        setRateLimit(retryAt(err));
        setFieldErrors({});
        setFormErrors([]);
        return;
      }
      if (err.network) {
        showErrors([], "The API could not be reached. Check your connection and try again.");
        return;
      }
      showErrors(err.details, err.message);
    },
  });

  const rateLimited = rateLimit !== null && rateLimit.until > now;

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    if (mutation.isPending || rateLimited) return;
    const values: FormValues = { target, checks, options, mode, agents, locations };
    setTargetTouched(true);
    const clientErrors = validateForm(values);
    if (clientErrors.length) {
      showErrors(clientErrors);
      return;
    }
    setFieldErrors({});
    setFormErrors([]);
    mutation.mutate(buildRequest(values));
  };

  const toggleCheck = (t: string) => {
    clearError("checks");
    setChecks((prev) => (prev.includes(t) ? prev.filter((x) => x !== t) : CHECK_TYPES.filter((x) => x === t || prev.includes(x))));
  };

  const setOpt = <K extends keyof OptionValues>(type: K, key: keyof OptionValues[K], value: string | boolean) => {
    clearError(`options.${type}.${String(key)}`);
    clearError(`options.${type}`);
    setOptions((prev) => ({ ...prev, [type]: { ...prev[type], [key]: value } }));
  };

  const toggleIn = (list: string[], v: string) => (list.includes(v) ? list.filter((x) => x !== v) : [...list, v]);

  return (
    <form onSubmit={onSubmit} noValidate data-testid="new-check-form" className="space-y-5">
      {/* target */}
      <div>
        <label htmlFor="target" className="block text-sm font-medium text-slate-700 mb-1">
          Target
        </label>
        <div className="flex flex-col gap-2 sm:flex-row">
          <div className="flex-1">
            <input
              ref={targetRef}
              id="target"
              name="target"
              data-testid="target-input"
              className={`${inputCls} font-mono`}
              placeholder="example.com, 192.0.2.1 or https://example.com/path"
              autoComplete="off"
              spellCheck={false}
              value={target}
              aria-invalid={Boolean(targetErrors)}
              aria-describedby="target-help"
              onChange={(e) => {
                setTarget(e.target.value);
                clearError("target");
              }}
              onBlur={() => target && setTargetTouched(true)}
            />
          </div>
          <button
            type="submit"
            data-testid="submit-check"
            disabled={mutation.isPending || rateLimited}
            className="rounded-md bg-teal-700 px-5 py-2 text-sm font-semibold text-white shadow-sm hover:bg-teal-800 disabled:cursor-not-allowed disabled:opacity-50"
          >
            {mutation.isPending ? "Starting…" : "Run check"}
          </button>
        </div>
        <div id="target-help">
          <FieldError field="target" messages={targetErrors} />
          {live.ok && !fieldErrors.target && (
            <p data-testid="target-kind" className="mt-1 text-xs text-emerald-700">
              ✓ {TARGET_KIND_LABEL[live.kind]}
            </p>
          )}
        </div>
      </div>

      {/* check types */}
      <fieldset>
        <legend className="mb-1 text-sm font-medium text-slate-700">Checks</legend>
        <div className="flex flex-wrap gap-2" data-testid="check-types">
          {CHECK_TYPES.map((t) => {
            const on = checks.includes(t);
            return (
              <label
                key={t}
                data-testid={`check-type-${t}`}
                data-checked={on}
                className={`cursor-pointer select-none rounded-full border px-3 py-1 text-sm font-medium transition has-[:focus-visible]:ring-2 has-[:focus-visible]:ring-teal-600/40 ${
                  on ? "border-teal-700 bg-teal-700 text-white" : "border-slate-300 bg-white text-slate-600 hover:border-teal-600"
                }`}
              >
                <input type="checkbox" className="sr-only" checked={on} onChange={() => toggleCheck(t)} />
                {checkLabel(t)}
              </label>
            );
          })}
        </div>
        <FieldError field="checks" messages={fieldErrors.checks} />
      </fieldset>

      {/* agent selection */}
      <fieldset>
        <legend className="mb-1 text-sm font-medium text-slate-700">Agents</legend>
        <div className="flex flex-wrap gap-4 text-sm" role="radiogroup">
          {(
            [
              ["all", `All online agents${agentsQ.data ? ` (${onlineCount})` : ""}`],
              ["locations", "By location"],
              ["agents", "Pick agents"],
            ] as [SelectionMode, string][]
          ).map(([m, label]) => (
            <label key={m} className="flex items-center gap-1.5">
              <input
                type="radio"
                name="mode"
                value={m}
                data-testid={`agent-mode-${m}`}
                checked={mode === m}
                onChange={() => {
                  setMode(m);
                  clearError("agents");
                  clearError("locations");
                }}
              />
              {label}
            </label>
          ))}
        </div>
        {agentsQ.isError && mode !== "all" && (
          <p className="mt-2 text-xs text-red-600">Could not load agents: {agentsQ.error.message}</p>
        )}
        {mode === "locations" && (
          <div className="mt-2 flex flex-wrap gap-2" data-testid="location-picker">
            {allLocations.length === 0 && !agentsQ.isLoading && <span className="text-xs text-slate-500">No locations known.</span>}
            {allLocations.map((loc) => (
              <label key={loc} className="flex items-center gap-1.5 rounded border border-slate-200 bg-white px-2 py-1 text-sm">
                <input
                  type="checkbox"
                  checked={locations.includes(loc)}
                  onChange={() => {
                    clearError("locations");
                    setLocations((l) => toggleIn(l, loc));
                  }}
                />
                {loc}
              </label>
            ))}
          </div>
        )}
        {mode === "agents" && (
          <div className="mt-2 flex flex-wrap gap-2" data-testid="agent-picker">
            {agentList.length === 0 && !agentsQ.isLoading && <span className="text-xs text-slate-500">No agents registered.</span>}
            {agentList.map((a) => (
              <label key={a.id} className="flex items-center gap-1.5 rounded border border-slate-200 bg-white px-2 py-1 text-sm">
                <input
                  type="checkbox"
                  checked={agents.includes(a.id)}
                  onChange={() => {
                    clearError("agents");
                    setAgents((l) => toggleIn(l, a.id));
                  }}
                />
                <OnlineDot status={a.status} />
                {a.name}
                <span className="text-xs text-slate-400">{a.location}</span>
              </label>
            ))}
          </div>
        )}
        <FieldError field="agents" messages={fieldErrors.agents} />
        <FieldError field="locations" messages={fieldErrors.locations} />
        <FieldError field="limit" messages={fieldErrors.limit} />
      </fieldset>

      {/* advanced */}
      <details
        open={advancedOpen}
        onToggle={(e) => setAdvancedOpen((e.currentTarget as HTMLDetailsElement).open)}
        className="rounded-lg border border-slate-200 bg-slate-50/60"
        data-testid="advanced"
      >
        <summary data-testid="advanced-toggle" className="cursor-pointer select-none px-3 py-2 text-sm font-medium text-slate-700">
          Advanced options
        </summary>
        <div className="grid gap-4 border-t border-slate-200 p-3 sm:grid-cols-2 lg:grid-cols-3">
          <FieldError field="options" messages={fieldErrors.options} />
          {checks.length === 0 && <p className="text-xs text-slate-500">Pick a check type to see its options.</p>}
          {checks.includes("http") && (
            <OptionGroup type="http" errors={fieldErrors["options.http"]}>
              <div className="grid grid-cols-2 gap-2">
                <div>
                  <label className={labelCls} htmlFor="opt-http-method">Method</label>
                  <select
                    id="opt-http-method"
                    data-testid="opt-http-method"
                    className={inputCls}
                    value={options.http.method}
                    onChange={(e) => setOpt("http", "method", e.target.value)}
                  >
                    {HTTP_METHODS.map((m) => (
                      <option key={m}>{m}</option>
                    ))}
                  </select>
                  <FieldError field="options.http.method" messages={fieldErrors["options.http.method"]} />
                </div>
                <div>
                  <label className={labelCls} htmlFor="opt-http-expected-status">Expected status</label>
                  <input
                    id="opt-http-expected-status"
                    data-testid="opt-http-expected_status"
                    className={inputCls}
                    placeholder="200-399"
                    value={options.http.expected_status}
                    aria-invalid={Boolean(fieldErrors["options.http.expected_status"])}
                    onChange={(e) => setOpt("http", "expected_status", e.target.value)}
                  />
                  <FieldError field="options.http.expected_status" messages={fieldErrors["options.http.expected_status"]} />
                </div>
              </div>
              <div className="mt-2 flex flex-wrap gap-x-4 gap-y-1 text-sm text-slate-700">
                <label className="flex items-center gap-1.5" title="Off: a self-signed or expired certificate does not fail the check (its details are still shown)">
                  <input
                    type="checkbox"
                    data-testid="opt-http-verify_tls"
                    checked={options.http.verify_tls}
                    onChange={(e) => setOpt("http", "verify_tls", e.target.checked)}
                  />
                  Verify TLS certificate
                </label>
                <label className="flex items-center gap-1.5">
                  <input
                    type="checkbox"
                    data-testid="opt-http-follow_redirects"
                    checked={options.http.follow_redirects}
                    onChange={(e) => setOpt("http", "follow_redirects", e.target.checked)}
                  />
                  Follow redirects
                </label>
              </div>
              <FieldError field="options.http.verify_tls" messages={fieldErrors["options.http.verify_tls"]} />
              <FieldError field="options.http.follow_redirects" messages={fieldErrors["options.http.follow_redirects"]} />
            </OptionGroup>
          )}
          {checks.includes("ping") && (
            <OptionGroup type="ping" errors={fieldErrors["options.ping"]}>
              <label className={labelCls} htmlFor="opt-ping-count">Packets (1–16)</label>
              <input
                id="opt-ping-count"
                data-testid="opt-ping-count"
                type="number"
                min={1}
                max={16}
                className={inputCls}
                placeholder="4"
                value={options.ping.count}
                aria-invalid={Boolean(fieldErrors["options.ping.count"])}
                onChange={(e) => setOpt("ping", "count", e.target.value)}
              />
              <FieldError field="options.ping.count" messages={fieldErrors["options.ping.count"]} />
            </OptionGroup>
          )}
          {checks.includes("dns") && (
            <OptionGroup type="dns" errors={fieldErrors["options.dns"]}>
              <div className="grid grid-cols-2 gap-2">
                <div>
                  <label className={labelCls} htmlFor="opt-dns-type">Record type</label>
                  <select
                    id="opt-dns-type"
                    data-testid="opt-dns-record_type"
                    className={inputCls}
                    value={options.dns.record_type}
                    onChange={(e) => setOpt("dns", "record_type", e.target.value)}
                  >
                    {DNS_RECORD_TYPES.map((t) => (
                      <option key={t}>{t}</option>
                    ))}
                  </select>
                  <FieldError field="options.dns.record_type" messages={fieldErrors["options.dns.record_type"]} />
                </div>
                <div>
                  <label className={labelCls} htmlFor="opt-dns-resolver">Resolver</label>
                  <input
                    id="opt-dns-resolver"
                    data-testid="opt-dns-resolver"
                    className={`${inputCls} font-mono`}
                    placeholder="system"
                    value={options.dns.resolver}
                    aria-invalid={Boolean(fieldErrors["options.dns.resolver"])}
                    onChange={(e) => setOpt("dns", "resolver", e.target.value)}
                  />
                  <FieldError field="options.dns.resolver" messages={fieldErrors["options.dns.resolver"]} />
                </div>
                <div>
                  <label className={labelCls} htmlFor="opt-dns-port">Resolver port</label>
                  <input
                    id="opt-dns-port"
                    data-testid="opt-dns-port"
                    type="number"
                    min={1}
                    max={65535}
                    className={inputCls}
                    placeholder="53"
                    value={options.dns.port}
                    aria-invalid={Boolean(fieldErrors["options.dns.port"])}
                    onChange={(e) => setOpt("dns", "port", e.target.value)}
                  />
                  <FieldError field="options.dns.port" messages={fieldErrors["options.dns.port"]} />
                </div>
                <div>
                  <label className={labelCls} htmlFor="opt-dns-protocol">Protocol</label>
                  <select
                    id="opt-dns-protocol"
                    data-testid="opt-dns-protocol"
                    className={inputCls}
                    value={options.dns.protocol}
                    onChange={(e) => setOpt("dns", "protocol", e.target.value)}
                  >
                    <option value="udp">UDP</option>
                    <option value="tcp">TCP</option>
                  </select>
                  <FieldError field="options.dns.protocol" messages={fieldErrors["options.dns.protocol"]} />
                </div>
              </div>
              <p className="mt-1 text-[11px] text-slate-500">Resolver: an IP or hostname; empty uses each agent&apos;s own resolver.</p>
            </OptionGroup>
          )}
          {checks.includes("tcp") && (
            <OptionGroup type="tcp" errors={fieldErrors["options.tcp"]}>
              <label className={labelCls} htmlFor="opt-tcp-port">Port</label>
              <input
                id="opt-tcp-port"
                data-testid="opt-tcp-port"
                type="number"
                min={1}
                max={65535}
                className={inputCls}
                placeholder="from the URL, else 80"
                value={options.tcp.port}
                aria-invalid={Boolean(fieldErrors["options.tcp.port"])}
                onChange={(e) => setOpt("tcp", "port", e.target.value)}
              />
              <FieldError field="options.tcp.port" messages={fieldErrors["options.tcp.port"]} />
            </OptionGroup>
          )}
          {checks.includes("traceroute") && (
            <OptionGroup type="traceroute" errors={fieldErrors["options.traceroute"]}>
              <label className={labelCls} htmlFor="opt-traceroute-max-hops">Max hops</label>
              <input
                id="opt-traceroute-max-hops"
                data-testid="opt-traceroute-max_hops"
                type="number"
                min={1}
                max={64}
                className={inputCls}
                placeholder="30"
                value={options.traceroute.max_hops}
                aria-invalid={Boolean(fieldErrors["options.traceroute.max_hops"])}
                onChange={(e) => setOpt("traceroute", "max_hops", e.target.value)}
              />
              <FieldError field="options.traceroute.max_hops" messages={fieldErrors["options.traceroute.max_hops"]} />
            </OptionGroup>
          )}
        </div>
      </details>

      {rateLimited && rateLimit && <RateLimitNotice limit={rateLimit} />}
      {formErrors.length > 0 && (
        <div data-testid="form-error" role="alert" className="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
          {formErrors.map((m, i) => (
            <div key={i}>{m}</div>
          ))}
        </div>
      )}
    </form>
  );
}

function OptionGroup({ type, errors, children }: { type: string; errors?: string[]; children: ReactNode }) {
  return (
    <div data-testid={`options-${type}`} className="rounded-md border border-slate-200 bg-white p-3">
      <div className="mb-2 text-xs font-semibold uppercase tracking-wide text-slate-500">{checkLabel(type)}</div>
      {children}
      <FieldError field={`options.${type}`} messages={errors} />
    </div>
  );
}
