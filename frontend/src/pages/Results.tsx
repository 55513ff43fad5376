import { useState } from "react";
import { Link, useParams } from "react-router";
import type { Check, CreateCheckRequest } from "../api/types";
import { RateLimitNotice } from "../components/RateLimitNotice";
import { CertificatesFlag } from "../components/CertificatesFlag";
import { CompareCharts } from "../components/CompareCharts";
import { ExportBar } from "../components/ExportBar";
import { ResultsTable } from "../components/ResultsTable";
import { Card, Empty, ErrorState, Loading } from "../components/States";
import { StatusBadge } from "../components/StatusBadge";
import { SummaryLines } from "../components/SummaryLines";
import { useAgents } from "../hooks/useAgents";
import { useCheck } from "../hooks/useCheck";
import { useCreateCheck } from "../hooks/useCreateCheck";
import { useNow } from "../hooks/useNow";
import { useTitle } from "../hooks/useTitle";
import { checkLabel } from "../lib/checkTypes";
import { describeAssumed, describeOptions, formatDateTime, isTerminalCheck, relativeTime } from "../lib/format";

export function rerunRequest(check: Check): CreateCheckRequest {
  const req: CreateCheckRequest = { target: check.target, checks: [...(check.check_types ?? [])] };
  if (check.options && Object.keys(check.options).length) req.options = check.options;
  // Ask for the agents the same way the first run did (not the same ids it got).
  const sel = check.selection;
  if (sel?.agents?.length) req.agents = [...sel.agents];
  if (sel?.locations?.length) req.locations = [...sel.locations];
  if (typeof sel?.limit === "number") req.limit = sel.limit;
  return req;
}

function CopyLink() {
  const [copied, setCopied] = useState<"idle" | "ok" | "fail">("idle");
  const url = window.location.href;
  const copy = async () => {
    try {
      if (!navigator.clipboard) throw new Error("no clipboard API");
      await navigator.clipboard.writeText(url);
      setCopied("ok");
    } catch {
      // No Clipboard API (a plain-http origin) or no permission: select the text and
      // try the older copy command; failing that, the user copies it by hand.
      const el = document.getElementById("share-url") as HTMLInputElement | null;
      el?.focus();
      el?.select();
      let ok: boolean;
      try {
        ok = document.execCommand("copy");
      } catch {
        ok = false;
      }
      setCopied(ok ? "ok" : "fail");
    }
    window.setTimeout(() => setCopied("idle"), 2000);
  };
  return (
    <div className="flex min-w-0 items-center gap-1">
      <input
        id="share-url"
        readOnly
        value={url}
        data-testid="share-url"
        onFocus={(e) => e.currentTarget.select()}
        className="w-64 min-w-0 rounded-md border border-slate-300 bg-slate-50 px-2 py-1 font-mono text-xs text-slate-600"
      />
      <button
        type="button"
        onClick={copy}
        data-testid="copy-link"
        className="rounded-md border border-slate-300 bg-white px-2.5 py-1 text-xs font-medium text-slate-700 hover:bg-slate-50"
      >
        {copied === "ok" ? "Copied!" : copied === "fail" ? "Press Ctrl+C" : "Copy link"}
      </button>
    </div>
  );
}

export default function Results() {
  const { id = "" } = useParams();
  const now = useNow(1000);
  const checkQ = useCheck(id);
  useTitle(checkQ.data ? `${checkQ.data.target} (${checkQ.data.status})` : "Results");
  const agentsQ = useAgents(10000);
  const rerun = useCreateCheck();

  if (checkQ.isPending) return <Loading label="Loading check…" testId="results-loading" />;
  // With data in hand a failed refresh keeps the last results on screen (see below).
  if (checkQ.isError && !checkQ.data) {
    if (checkQ.error.status === 404 || checkQ.error.status === 400) {
      return (
        <Empty testId="results-not-found">
          <p className="font-medium text-slate-700">Check not found</p>
          <p className="mt-1">
            There is no check <span className="font-mono">{id}</span>. It may have been deleted.{" "}
            <Link to="/" className="text-teal-700 hover:underline">
              Run a new check
            </Link>
          </p>
        </Empty>
      );
    }
    return <ErrorState error={checkQ.error} title="Could not load this check" onRetry={() => checkQ.refetch()} testId="results-error" />;
  }

  const check = checkQ.data!;
  const terminal = isTerminalCheck(check.status);
  const optionNotes = describeOptions(check.check_types ?? [], check.options);
  const assumedNotes = describeAssumed(check.assumed);

  return (
    <div className="space-y-5" data-testid="results-page" data-check-status={check.status}>
      <div className="flex flex-wrap items-start justify-between gap-4">
        <div className="min-w-0">
          <div className="text-xs font-medium uppercase tracking-wide text-slate-500">Results</div>
          <h1 className="break-all font-mono text-xl font-semibold text-slate-900" data-testid="results-target">
            {check.target}
          </h1>
          <div className="mt-1 flex flex-wrap items-center gap-2 text-xs text-slate-500">
            <StatusBadge status={check.status} testId="check-status" />
            <span>{(check.check_types ?? []).map(checkLabel).join(" · ")}</span>
            <span title={formatDateTime(check.created_at)}>started {relativeTime(check.created_at, now)}</span>
            {!terminal &&
              (checkQ.mode === "live" ? (
                <span data-testid="live-indicator" title="Results are pushed as each agent finishes">
                  · live
                </span>
              ) : (
                <span data-testid="polling-indicator">· polling every 2 s</span>
              ))}
          </div>
          {check.target_info && check.target_info.host !== check.target_info.host_unicode && (
            <div className="text-xs text-slate-500" data-testid="target-alabel">
              {check.target_info.host_unicode} is checked as <span className="font-mono">{check.target_info.host}</span>
            </div>
          )}
          {optionNotes.length > 0 && (
            <div className="mt-1 text-xs text-slate-500" data-testid="check-options">
              {optionNotes.join(" · ")}
            </div>
          )}
          {assumedNotes.length > 0 && (
            <div className="mt-1 text-xs text-slate-500" data-testid="check-assumed">
              {assumedNotes.join(" · ")}
            </div>
          )}
        </div>
        <div className="flex flex-wrap items-center gap-2">
          <CopyLink />
          <ExportBar check={check} request={rerunRequest(check)} />
          <button
            type="button"
            data-testid="run-again"
            disabled={rerun.blocked}
            onClick={() => rerun.create(rerunRequest(check))}
            className="rounded-md bg-teal-700 px-3 py-1 text-xs font-semibold text-white hover:bg-teal-800 disabled:opacity-50"
          >
            {rerun.isPending ? "Starting…" : "Run again"}
          </button>
        </div>
      </div>
      {rerun.rateLimit && <RateLimitNotice limit={rerun.rateLimit} />}
      {rerun.error && (
        <ErrorState error={rerun.error} title="Could not start the check again" testId="run-again-error" />
      )}
      {checkQ.isError && (
        <div className="text-xs text-amber-700" data-testid="refresh-error">
          Could not refresh ({checkQ.error.message}); showing the last known results.
        </div>
      )}

      <Card title="Summary" testId="summary-card">
        <SummaryLines check={check} />
        <div className="mt-3 empty:hidden">
          <CertificatesFlag results={check.results ?? []} />
        </div>
      </Card>

      <Card title="Per agent" testId="results-card">
        {(check.results ?? []).length === 0 ? (
          check.status === "failed" ? (
            <Empty testId="results-empty">
              This check could not run
              {check.error ? (
                <>
                  : <span className="font-mono">{check.error}</span>
                </>
              ) : (
                ": no eligible agent"
              )}
              . See the{" "}
              <Link to="/agents" className="text-teal-700 hover:underline">
                Agents page
              </Link>{" "}
              and try again.
            </Empty>
          ) : (
            <Empty testId="results-empty">Waiting for agents to pick up the check…</Empty>
          )
        ) : (
          <>
            <ResultsTable check={check} agents={agentsQ.data?.items} />
            <p className="mt-2 text-xs text-slate-400">Click a finished cell for details.</p>
          </>
        )}
      </Card>

      {(check.results ?? []).some((r) => r.data && (r.check_type === "http" || r.check_type === "ping")) && (
        <Card title="Compare agents" testId="compare-card">
          <CompareCharts check={check} />
        </Card>
      )}
    </div>
  );
}
