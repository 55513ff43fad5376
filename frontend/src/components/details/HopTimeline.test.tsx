import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { HopTimeline, hopsOf } from "./HopTimeline";

const hops = [
  { url: "http://example.com/", status_code: 301, address: "192.0.2.1", timings_ms: { dns: 5, connect: 100, tls: null, ttfb: 20, download: 0, total: 125 } },
  { url: "https://example.com/", status_code: 302, address: "192.0.2.1", timings_ms: { dns: 0, connect: 120, tls: 30, ttfb: 20, download: 0, total: 175 } },
  { url: "https://www.example.com/", status_code: 200, address: "192.0.2.2", timings_ms: { dns: 4, connect: 144, tls: 30, ttfb: 20, download: 2, total: 200 } },
];

describe("HopTimeline", () => {
  it("shows each request's own connect on one time axis", () => {
    render(<HopTimeline hops={hops} />);
    const rows = screen.getAllByTestId("hop-row");
    expect(rows).toHaveLength(3);
    expect(rows.map((r) => within(r).getByTestId("hop-bar-connect").dataset.ms)).toEqual(["100", "120", "144"]);
    expect(rows[1]).toHaveTextContent("302");
    expect(within(rows[2]).getByTestId("hop-total")).toHaveTextContent("200 ms");
    // the second hop starts where the first ended: 125 of 500 ms
    const secondDns = within(rows[1]).getByTestId("hop-bar-connect");
    expect(parseFloat(secondDns.style.left)).toBeCloseTo(25, 5);
  });

  it("reads data.hops, or redirects that carry their own timings", () => {
    expect(hopsOf({ hops })).toHaveLength(3);
    const older = { redirects: [{ url: "http://a/", status_code: 301, timings_ms: { total: 5 } }], final_url: "https://a/", status_code: 200 };
    expect(hopsOf(older).map((h) => h.status_code)).toEqual([301, 200]);
    expect(hopsOf({ redirects: [{ url: "http://a/", status_code: 301 }] })).toEqual([]);
  });
});
