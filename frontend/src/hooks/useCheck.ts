import { useEffect, useRef, useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { getCheck } from "../api/endpoints";
import type { ApiError } from "../api/client";
import type { Check } from "../api/types";
import { isTerminalCheck } from "../lib/format";
import { applyLiveMessage, connectLive, liveBaseUrl, socketUrl, type LiveMode } from "../lib/liveCheck";

export const POLL_INTERVAL_MS = 2000;

export const checkQueryKey = (id: string) => ["check", id] as const;

/**
 * The one place that keeps a check's results fresh. With a WebSocket endpoint configured
 * (config.json `wsUrl`) results are pushed into the cache as they arrive and polling stops
 * while the socket is live; without one, or while the socket is down, it polls every 2 s
 * until the check is terminal. `mode` says which is on.
 */
export function useCheck(id: string) {
  const queryClient = useQueryClient();
  const wsUrl = liveBaseUrl();
  // The mode the socket last reported, with the socket it is about: a new id (or no socket)
  // starts out polling without an effect having to reset it.
  const socket = id && wsUrl ? socketUrl(wsUrl, id) : null;
  const [reported, setReported] = useState<{ socket: string; mode: LiveMode } | null>(null);
  const mode: LiveMode = socket && reported?.socket === socket ? reported.mode : "polling";
  // When the socket last changed the cached check: a GET that started before it answers
  // with older state, and must not overwrite what was pushed since.
  const liveAt = useRef(0);

  useEffect(() => {
    if (!id || !wsUrl) return;
    const key = checkQueryKey(id);
    const about = socketUrl(wsUrl, id);
    return connectLive({
      url: wsUrl,
      checkId: id,
      onMode: (next) => setReported({ socket: about, mode: next }),
      onMessage: (msg) => {
        liveAt.current = performance.now();
        queryClient.setQueryData<Check>(key, (old) => applyLiveMessage(old, msg));
      },
      isDone: () => isTerminalCheck(queryClient.getQueryData<Check>(key)?.status),
    });
  }, [id, wsUrl, queryClient]);

  const query = useQuery<Check, ApiError>({
    queryKey: checkQueryKey(id),
    queryFn: async () => {
      const started = performance.now();
      const fetched = await getCheck(id);
      const pushed = queryClient.getQueryData<Check>(checkQueryKey(id));
      return pushed && liveAt.current >= started ? pushed : fetched;
    },
    enabled: Boolean(id),
    retry: (count, err) => err.status !== 404 && err.status !== 400 && count < 2,
    refetchInterval: (q) => {
      const { data, error } = q.state;
      if (error?.status === 404) return false;
      if (data && isTerminalCheck(data.status)) return false;
      if (mode === "live") return false;
      return POLL_INTERVAL_MS;
    },
  });
  return { ...query, mode };
}
