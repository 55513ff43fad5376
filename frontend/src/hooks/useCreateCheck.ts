import { useState } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useNavigate } from "react-router";
import { createCheck } from "../api/endpoints";
import type { ApiError } from "../api/client";
import type { CreateCheckRequest, CreateCheckResponse } from "../api/types";
import { rememberCheck } from "../lib/myChecks";
import { useNow } from "./useNow";

export interface RateLimit {
  until: number;
  /** False when the 429 carried no Retry-After and the wait is a guess. */
  known: boolean;
}

/** When a 429 allows the next try; without a Retry-After we guess 60 s (and say so). */
export function retryAt(err: ApiError, now = Date.now()): RateLimit {
  return { until: now + (err.retryAfter ?? 60) * 1000, known: err.retryAfter !== null };
}

/**
 * POST /api/checks for the form and "Run again": on success the check is remembered as one of
 * "my checks" and the page goes to its results; a 429 becomes `rateLimit` (a countdown) rather
 * than an error; any other failure is `error` and goes to `onError`.
 */
export function useCreateCheck({ onError }: { onError?: (err: ApiError) => void } = {}) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const now = useNow(1000);
  const [rateLimit, setRateLimit] = useState<RateLimit | null>(null);

  const mutation = useMutation<CreateCheckResponse, ApiError, CreateCheckRequest>({
    mutationFn: (body) => createCheck(body),
    onSuccess: (res, body) => {
      rememberCheck({ id: res.check_id, target: body.target, created_at: res.created_at ?? new Date().toISOString() });
      queryClient.invalidateQueries({ queryKey: ["checks"] });
      navigate(`/results/${encodeURIComponent(res.check_id)}`);
    },
    onError: (err) => {
      if (err.status === 429) setRateLimit(retryAt(err));
      else onError?.(err);
    },
  });

  const limited = rateLimit !== null && rateLimit.until > now ? rateLimit : null;
  return {
    create: mutation.mutate,
    isPending: mutation.isPending,
    /** The last failure other than a 429. */
    error: mutation.isError && mutation.error.status !== 429 ? mutation.error : null,
    rateLimit: limited,
    blocked: mutation.isPending || limited !== null,
  };
}
