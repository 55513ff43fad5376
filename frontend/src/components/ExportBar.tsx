import { useState } from "react";
import { apiDisplayUrl } from "../api/client";
import type { Check, CreateCheckRequest } from "../api/types";
import { resultsCsv } from "../lib/compare";

/** A shell-quoted curl command that makes the same API request again. */
export function curlCommand(apiBase: string, body: CreateCheckRequest): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [`curl -sS -X POST ${q(`${apiBase.replace(/\/+$/, "")}/api/checks`)}`, `-H 'Content-Type: application/json'`, `-d ${q(JSON.stringify(body))}`].join(" \\\n  ");
}

export function checkJsonUrl(apiBase: string, id: string): string {
  return `${apiBase.replace(/\/+$/, "")}/api/checks/${encodeURIComponent(id)}`;
}

async function copyText(text: string): Promise<boolean> {
  try {
    if (!navigator.clipboard) return false;
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false; // a plain-http origin or no permission: the command is shown to copy by hand
  }
}

function downloadCsv(check: Check) {
  const blob = new Blob([resultsCsv(check.results ?? [])], { type: "text/csv;charset=utf-8" });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = `check-${check.check_id}.csv`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  URL.revokeObjectURL(url);
}

const btn = "rounded-md border border-slate-300 bg-white px-2.5 py-1 text-xs font-medium text-slate-700 hover:bg-slate-50";

/** Export: "Copy as curl" (the request that made this check), the JSON it reads, and a CSV of the table. */
export function ExportBar({ check, request }: { check: Check; request: CreateCheckRequest }) {
  const [curlState, setCurlState] = useState<"idle" | "copied" | "shown">("idle");
  const api = apiDisplayUrl();
  const curl = curlCommand(api, request);
  const copyCurl = async () => {
    setCurlState((await copyText(curl)) ? "copied" : "shown");
    if (curlState !== "shown") window.setTimeout(() => setCurlState((s) => (s === "copied" ? "idle" : s)), 2000);
  };
  return (
    <div data-testid="export-bar" className="space-y-2">
      <div className="flex flex-wrap items-center gap-2">
        <button type="button" className={btn} data-testid="copy-curl" onClick={copyCurl}>
          {curlState === "copied" ? "Copied!" : "Copy as curl"}
        </button>
        <a className={btn} data-testid="json-link" href={checkJsonUrl(api, check.check_id)} target="_blank" rel="noreferrer">
          JSON
        </a>
        <button type="button" className={btn} data-testid="download-csv" onClick={() => downloadCsv(check)}>
          CSV
        </button>
      </div>
      {curlState === "shown" && (
        <pre data-testid="curl-command" className="max-w-full overflow-x-auto rounded bg-slate-900 p-2 text-[11px] text-slate-100">
          {curl}
        </pre>
      )}
    </div>
  );
}
