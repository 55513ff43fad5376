import { useInfiniteQuery } from "@tanstack/react-query";
import { Link } from "react-router";
import { listChecks } from "../api/endpoints";
import type { ApiError } from "../api/client";
import type { CheckListItem, Page } from "../api/types";
import { useNow } from "../hooks/useNow";
import { checkLabel } from "../lib/checkTypes";
import { relativeTime } from "../lib/format";
import { Empty, ErrorState, Loading } from "./States";
import { StatusBadge } from "./StatusBadge";

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
          <li key={c.check_id}>
            <Link
              to={`/results/${encodeURIComponent(c.check_id)}`}
              data-testid="recent-check"
              className="flex flex-wrap items-center gap-x-3 gap-y-1 px-1 py-2 hover:bg-slate-50"
            >
              <span className="min-w-0 flex-1 truncate font-mono text-sm text-slate-800">{c.target}</span>
              <span className="flex gap-1">
                {(c.check_types ?? []).map((t) => (
                  <span key={t} className="rounded bg-slate-100 px-1.5 py-0.5 text-[11px] font-medium text-slate-600">
                    {checkLabel(t)}
                  </span>
                ))}
              </span>
              <StatusBadge status={c.status} />
              <span className="w-20 text-right text-xs text-slate-500" title={c.created_at}>
                {relativeTime(c.created_at, now)}
              </span>
            </Link>
          </li>
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
