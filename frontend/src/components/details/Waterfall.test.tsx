import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { Waterfall, waterfallSegments } from "./Waterfall";

describe("waterfallSegments", () => {
  it("lays phase durations end to end", () => {
    const { segments, total } = waterfallSegments({ dns: 5, connect: 10, tls: 20, ttfb: 30, download: 7, total: 72 });
    expect(total).toBe(72);
    expect(segments.map((s) => [s.phase, s.start, s.duration])).toEqual([
      ["dns", 0, 5],
      ["connect", 5, 10],
      ["tls", 15, 20],
      ["ttfb", 35, 30],
      ["download", 65, 7],
    ]);
  });

  it("treats a missing phase (no TLS on http://) as absent", () => {
    const { segments } = waterfallSegments({ dns: 1, connect: 2, tls: null, ttfb: 3, download: 1, total: 7 });
    expect(segments.find((s) => s.phase === "tls")?.duration).toBeNull();
    expect(segments.find((s) => s.phase === "ttfb")?.start).toBe(3);
  });

  it("differences cumulative timings", () => {
    const { segments } = waterfallSegments({ dns: 5, connect: 15, tls: 35, ttfb: 65, download: 72, total: 72 });
    expect(segments.map((s) => s.duration)).toEqual([5, 10, 20, 30, 7]);
  });
});

describe("Waterfall", () => {
  it("draws one bar per phase, positioned and sized against the total", () => {
    render(<Waterfall timings={{ dns: 10, connect: 10, tls: 0, ttfb: 60, download: 20, total: 100 }} />);
    expect(screen.getByTestId("waterfall")).toBeInTheDocument();
    const dns = screen.getByTestId("waterfall-bar-dns");
    expect(dns.style.left).toBe("0%");
    expect(dns.style.width).toBe("10%");
    const ttfb = screen.getByTestId("waterfall-bar-ttfb");
    expect(ttfb.style.left).toBe("20%");
    expect(ttfb.style.width).toBe("60%");
    expect(screen.getByTestId("waterfall-bar-download").style.left).toBe("80%");
    expect(screen.getByTestId("waterfall-row-ttfb")).toHaveTextContent("60 ms");
    expect(screen.getByTestId("waterfall-total")).toHaveTextContent("100 ms");
  });

  it("says so when there are no timings", () => {
    render(<Waterfall timings={null} />);
    expect(screen.getByText(/no timings/i)).toBeInTheDocument();
  });
});
