import type { RateLimit } from "../hooks/useCreateCheck";
import { useNow } from "../hooks/useNow";
import { formatWait } from "../lib/format";

export function RateLimitNotice({ limit, testId = "rate-limit-error" }: { limit: RateLimit; testId?: string }) {
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
