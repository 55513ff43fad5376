import type { ReactNode } from "react";
import type { ApiError } from "../api/client";
import { apiDisplayUrl } from "../api/client";

export function Loading({ label = "Loading…", testId = "loading" }: { label?: string; testId?: string }) {
  return (
    <div data-testid={testId} role="status" className="flex items-center gap-2 py-6 text-sm text-slate-500">
      <span className="h-4 w-4 animate-spin rounded-full border-2 border-slate-300 border-t-teal-600" aria-hidden />
      {label}
    </div>
  );
}

export function Empty({ children, testId = "empty" }: { children: ReactNode; testId?: string }) {
  return (
    <div
      data-testid={testId}
      className="rounded-lg border border-dashed border-slate-300 bg-white px-4 py-8 text-center text-sm text-slate-500"
    >
      {children}
    </div>
  );
}

export function ErrorState({
  error,
  title = "Something went wrong",
  onRetry,
  testId = "error",
}: {
  error: ApiError | Error | null | undefined;
  title?: string;
  onRetry?: () => void;
  testId?: string;
}) {
  const e = error as ApiError | undefined;
  const msg = e?.network
    ? `The API at ${apiDisplayUrl()} did not answer.`
    : e?.message ?? "Unknown error";
  return (
    <div data-testid={testId} role="alert" className="rounded-lg border border-red-200 bg-red-50 px-4 py-3 text-sm text-red-800">
      <div className="font-medium">{title}</div>
      <div className="mt-0.5">
        {msg}
        {e?.status ? <span className="text-red-600"> (HTTP {e.status})</span> : null}
      </div>
      {onRetry && (
        <button
          type="button"
          onClick={onRetry}
          className="mt-2 rounded border border-red-300 bg-white px-2 py-1 text-xs font-medium text-red-700 hover:bg-red-100"
        >
          Try again
        </button>
      )}
    </div>
  );
}

export function Card({ title, actions, children, testId }: { title?: ReactNode; actions?: ReactNode; children: ReactNode; testId?: string }) {
  return (
    <section data-testid={testId} className="rounded-xl border border-slate-200 bg-white shadow-sm">
      {(title || actions) && (
        <header className="flex items-center justify-between gap-2 border-b border-slate-100 px-4 py-3">
          <h2 className="text-sm font-semibold text-slate-700">{title}</h2>
          {actions}
        </header>
      )}
      <div className="p-4">{children}</div>
    </section>
  );
}
