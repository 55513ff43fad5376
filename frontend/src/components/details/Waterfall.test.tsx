import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { Waterfall, WaterfallBar, waterfallSegments } from "./Waterfall";

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

describe("the waterfall accounts for the total", () => {
  it("adds a labelled remainder where the phases do not cover the total", () => {
    // the case: phases summing to 123 ms against a total of 207 ms
    const t = { dns: 3, connect: 20, tls: 60, ttfb: 30, download: 10, total: 207 };
    const { segments, total } = waterfallSegments(t);
    expect(total).toBe(207);
    expect(segments.at(-1)).toEqual({ phase: "other", start: 123, duration: 84 });
    render(<Waterfall timings={t} />);
    expect(screen.getByTestId("waterfall-row-other")).toHaveTextContent("Between phases");
    expect(screen.getByTestId("waterfall-row-other")).toHaveTextContent("84 ms");
    const other = screen.getByTestId("waterfall-bar-other");
    // the last bar ends at the end of the track
    expect(parseFloat(other.style.left) + parseFloat(other.style.width)).toBeCloseTo(100, 5);
  });

  it("leaves rounding out", () => {
    expect(waterfallSegments({ dns: 10, connect: 10, tls: null, ttfb: 30, download: 49.9, total: 100 }).segments.map((s) => s.phase)).not.toContain("other");
  });

  it("draws to a shared scale, so a short total is a short bar", () => {
    render(<Waterfall timings={{ dns: 6, connect: 10, tls: null, ttfb: 10, download: 0, total: 26 }} scale={260} />);
    expect(screen.getByTestId("waterfall")).toHaveAttribute("data-scale-ms", "260");
    const ttfb = screen.getByTestId("waterfall-bar-ttfb");
    expect(parseFloat(ttfb.style.left) + parseFloat(ttfb.style.width)).toBeCloseTo(10, 5);
  });

  it("stacks one agent's phases in a single bar for comparing", () => {
    render(<WaterfallBar timings={{ dns: 10, connect: 10, tls: 0, ttfb: 20, download: 10, total: 50 }} scale={100} testId="bar" />);
    const bar = screen.getByTestId("bar");
    expect(bar).toHaveAttribute("data-total-ms", "50");
    const download = bar.querySelector('[data-phase="download"]') as HTMLElement;
    expect(download.style.left).toBe("40%");
    expect(download.style.width).toBe("10%");
  });
});
