import { useSyncExternalStore } from "react";

/** Whether a CSS media query matches now (false where matchMedia does not exist, as in jsdom). */
export function useMediaQuery(query: string): boolean {
  const mql = typeof window !== "undefined" && window.matchMedia ? window.matchMedia(query) : null;
  return useSyncExternalStore(
    (onChange) => {
      mql?.addEventListener("change", onChange);
      return () => mql?.removeEventListener("change", onChange);
    },
    () => mql?.matches ?? false,
    () => false,
  );
}

/** A phone-sized viewport (Tailwind's `sm` breakpoint is 640 px): results are cards, not a table. */
export const NARROW = "(max-width: 639px)";
