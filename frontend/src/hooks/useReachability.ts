import { useSyncExternalStore } from "react";
import { reachability } from "../api/client";

/** True while the last API call got no HTTP answer at all. */
export function useApiUnreachable(): boolean {
  return useSyncExternalStore(reachability.subscribe, reachability.get, reachability.get);
}
