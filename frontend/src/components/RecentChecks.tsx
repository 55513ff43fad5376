import { useState, useSyncExternalStore } from "react";
import { useInfiniteQuery, useQueries } from "@tanstack/react-query";
import { Link } from "react-router";
import { getCheck, listChecks } from "../api/endpoints";
import type { ApiError } from "../api/client";
import type { Check, CheckListItem, Page } from "../api/types";
import { checkQueryKey } from "../hooks/useCheck";
import { useNow } from "../hooks/useNow";
import { checkLabel } from "../lib/checkTypes";
import { checkVerdict, isTerminalCheck, relativeTime } from "../lib/format";
import { forgetMyChecks, myChecks, subscribeMyChecks, type MyCheck } from "../lib/myChecks";
import { Empty, ErrorState, Loading } from "./States";
import { StatusBadge } from "./StatusBadge";

const STATUS_OF_VERDICT = { ok: "ok", partial: "partial", failed: "failed", pending: "running" } as const;

type RowItem = Pick<CheckListItem, "check_id" | "target" | "status" | "created_at"> & Partial<Pick<CheckListItem, "check_types" | "summary">>;

/** One check in a list: target, types, its verdict (from the summary) and age. */
export function RecentCheckRow({ item, now, note }: { item: RowItem; now: number; note?: string }) {
  const v = checkVerdict(item);
  return (
    <li>
      <Link
        to={`/results/${encodeURIComponent(item.check_id)}`}
        data-testid="recent-check"
        data-verdict={note ? "unknown" : v.verdict}
        className="flex flex-wrap items-center gap-x-3 gap-y-1 px-1 py-2 hover:bg-slate-50"
      >
        <span className="min-w-0 flex-1 truncate font-mono text-sm text-slate-800">{item.target}</span>
        <span className="flex gap-1">
          {(item.check_types ?? []).map((t) => (
            <span key={t} className="rounded bg-slate-100 px-1.5 py-0.5 text-[11px] font-medium text-slate-600">
              {checkLabel(t)}
            </span>
          ))}
        </span>
        {note ? (
          <span className="text-xs text-slate-400">{note}</span>
        ) : (
          <StatusBadge status={STATUS_OF_VERDICT[v.verdict]} label={v.label} testId="recent-check-verdict" />
        )}
        <span className="w-20 text-right text-xs text-slate-500" title={item.created_at}>
          {relativeTime(item.created_at, now)}
        </span>
      </Link>
    </li>
  );
}

function rowOf(mine: MyCheck, c: Check | undefined, err: ApiError | null): { item: RowItem; note?: string } {
  if (c) {
    const { target, status, created_at, check_types } = c;
    return { item: { check_id: mine.id, target, status, created_at, check_types, summary: c.summary ?? undefined } };
  }
  const item = { check_id: mine.id, target: mine.target, status: "pending" as const, created_at: mine.created_at };
  if (err?.status === 404) return { item, note: "deleted" };
  return { item, note: err ? "could not load" : "loading…" };
}

/** The checks started in this browser (localStorage), each read from the API for its verdict. */
export function MyChecks({ pageSize = 10 }: { pageSize?: number }) {
  const now = useNow(5000);
  const mine = useSyncExternalStore(subscribeMyChecks, myChecks, myChecks);
  const [shown, setShown] = useState(pageSize);
  const visible = mine.slice(0, shown);
  const queries = useQueries({
    queries: visible.map((m) => ({
      queryKey: checkQueryKey(m.id),
      queryFn: () => getCheck(m.id),
      retry: false,
      staleTime: 5000,
      // A finished check never changes; a running one is re-read now and then.
      refetchInterval: (q: { state: { data?: Check } }) => (q.state.data && isTerminalCheck(q.state.data.status) ? false : 5000),
    })),
  });
  if (mine.length === 0) return <Empty testId="my-checks-empty">No checks from this browser yet. Run the first one above.</Empty>;
  return (
    <div>
      <ul data-testid="my-checks" className="divide-y divide-slate-100">
        {visible.map((m, i) => {
          const row = rowOf(m, queries[i]?.data as Check | undefined, (queries[i]?.error as ApiError | null) ?? null);
          return <RecentCheckRow key={m.id} item={row.item} note={row.note} now={now} />;
        })}
      </ul>
      <div className="mt-2 flex gap-4 text-sm">
        {mine.length > shown && (
          <button type="button" onClick={() => setShown((n) => n + pageSize)} className="font-medium text-teal-700 hover:underline" data-testid="my-checks-more">
            Show older checks
          </button>
        )}
        <button type="button" onClick={forgetMyChecks} className="text-slate-500 hover:underline" data-testid="my-checks-forget">
          Forget this list
        </button>
      </div>
    </div>
  );
}

/** Every user's recent checks (GET /api/checks), on stages that make the list public. */
export function RecentChecks() {
  const now = useNow(5000);
  const q = useInfiniteQuery<Page<CheckListItem>, ApiError>({
    queryKey: ["checks"],
    queryFn: ({ pageParam }) => listChecks({ limit: 10, cursor: pageParam as string | null }),
    initialPageParam: null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    refetchInterval: 10000,
  });

  if (q.isPending) return <Loading label="Loading recent checks…" testId="recent-checks-loading" />;
  if (q.isError) return <ErrorState error={q.error} title="Could not load recent checks" onRetry={() => q.refetch()} testId="recent-checks-error" />;
  const items = q.data.pages.flatMap((p) => p.items);
  if (items.length === 0) return <Empty testId="recent-checks-empty">No checks yet. Run the first one above.</Empty>;

  return (
    <div>
      <ul data-testid="recent-checks" className="divide-y divide-slate-100">
        {items.map((c) => (
          <RecentCheckRow key={c.check_id} item={c} now={now} />
        ))}
      </ul>
      {q.hasNextPage && (
        <button
          type="button"
          onClick={() => q.fetchNextPage()}
          disabled={q.isFetchingNextPage}
          className="mt-2 text-sm font-medium text-teal-700 hover:underline disabled:opacity-50"
          data-testid="recent-checks-more"
        >
          {q.isFetchingNextPage ? "Loading…" : "Show older checks"}
        </button>
      )}
    </div>
  );
}
