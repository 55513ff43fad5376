import type { Outcome } from "../lib/format";

const STYLES: Record<string, string> = {
  ok: "bg-emerald-100 text-emerald-800 ring-emerald-600/20",
  completed: "bg-emerald-100 text-emerald-800 ring-emerald-600/20",
  online: "bg-emerald-100 text-emerald-800 ring-emerald-600/20",
  failed: "bg-red-100 text-red-800 ring-red-600/20",
  offline: "bg-slate-200 text-slate-600 ring-slate-500/20",
  partial: "bg-amber-100 text-amber-800 ring-amber-600/20",
  running: "bg-sky-100 text-sky-800 ring-sky-600/20",
  in_progress: "bg-sky-100 text-sky-800 ring-sky-600/20",
  pending: "bg-slate-100 text-slate-600 ring-slate-500/20",
};

const LABELS: Record<string, string> = {
  ok: "OK",
  completed: "completed",
  failed: "failed",
  running: "running",
  in_progress: "in progress",
  pending: "pending",
  online: "online",
  offline: "offline",
  partial: "partial",
};

export function StatusBadge({
  status,
  label,
  testId,
}: {
  status: Outcome | string;
  label?: string;
  testId?: string;
}) {
  const cls = STYLES[status] ?? STYLES.pending;
  const spinning = status === "running" || status === "in_progress";
  return (
    <span
      data-testid={testId ?? "status-badge"}
      data-status={status}
      className={`inline-flex items-center gap-1 rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset whitespace-nowrap ${cls}`}
    >
      {spinning && <span className="h-1.5 w-1.5 animate-pulse rounded-full bg-sky-500" aria-hidden />}
      {label ?? LABELS[status] ?? status}
    </span>
  );
}

export function OnlineDot({ status }: { status: string | undefined }) {
  const online = status === "online";
  const title = status ? status : "unknown";
  return (
    <span
      title={title}
      aria-label={title}
      data-testid="online-dot"
      data-status={status ?? "unknown"}
      className={`inline-block h-2 w-2 shrink-0 rounded-full ${
        online ? "bg-emerald-500" : status === "offline" ? "bg-slate-400" : "bg-slate-200"
      }`}
    />
  );
}
