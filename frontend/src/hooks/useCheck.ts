import { useQuery } from "@tanstack/react-query";
import { getCheck } from "../api/endpoints";
import type { ApiError } from "../api/client";
import type { Check } from "../api/types";
import { isTerminalCheck } from "../lib/format";

export const POLL_INTERVAL_MS = 2000;

export const checkQueryKey = (id: string) => ["check", id] as const;

/**
 * The one place that keeps a check's results fresh. Today it polls every 2 s
 * while the check is not terminal (completed/failed) and then stops; a
 * WebSocket subscription can replace the polling here without touching pages
 * (push into the cache with queryClient.setQueryData(checkQueryKey(id), ...)).
 */
export function useCheck(id: string) {
  return useQuery<Check, ApiError>({
    queryKey: checkQueryKey(id),
    queryFn: () => getCheck(id),
    enabled: Boolean(id),
    retry: (count, err) => err.status !== 404 && err.status !== 400 && count < 2,
    refetchInterval: (query) => {
      const { data, error } = query.state;
      if (error?.status === 404) return false;
      if (data && isTerminalCheck(data.status)) return false;
      return POLL_INTERVAL_MS;
    },
  });
}
