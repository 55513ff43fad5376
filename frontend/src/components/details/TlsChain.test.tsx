import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { HTTP_DATA, result } from "../../test/utils";
import { HttpDetail } from "./Details";

const CHAIN = [
  {
    subject: "CN=example.com",
    issuer: "CN=Test Intermediate",
    not_before: "2026-01-01T00:00:00+00:00",
    not_after: "2026-04-01T00:00:00+00:00",
    key_type: "RSA",
    key_bits: 2048,
    curve: null,
    fingerprint_sha256: "AA:BB:CC:DD:EE:FF",
    is_ca: false,
  },
  {
    subject: "CN=Test Intermediate",
    issuer: "CN=Test Root",
    not_before: "2025-01-01T00:00:00+00:00",
    not_after: "2030-01-01T00:00:00+00:00",
    key_type: "EC",
    key_bits: 256,
    curve: "secp256r1",
    fingerprint_sha256: "11:22:33:44:55:66",
    is_ca: true,
  },
];

function detail(tls: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  render(<HttpDetail r={result({ check_type: "http", data: { ...HTTP_DATA, tls: { ...HTTP_DATA.tls, ...tls }, ...extra } })} />);
}

describe("the TLS view", () => {
  it("lists every certificate of the chain with its key and fingerprint", () => {
    detail({
      chain: CHAIN,
      alpn: "h2",
      ocsp: { stapled: true, cert_status: "good", next_update: "2026-12-08T12:00:00+00:00" },
      hostname_match: { host: "example.com", matched: true, by: "san:example.com" },
    });
    const rows = screen.getAllByTestId("tls-chain-cert");
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent("leaf");
    expect(rows[0]).toHaveTextContent("CN=example.com");
    expect(rows[0]).toHaveTextContent("by CN=Test Intermediate");
    expect(rows[0]).toHaveTextContent("RSA 2048");
    expect(rows[0]).toHaveTextContent("AA:BB:CC:DD:EE:FF");
    expect(rows[0]).toHaveTextContent("2026-01-01 – 2026-04-01");
    expect(rows[1]).toHaveTextContent("CA");
    expect(rows[1]).toHaveTextContent("EC 256 (secp256r1)");
    expect(screen.getByTestId("tls-alpn")).toHaveTextContent("h2");
    expect(screen.getByTestId("tls-ocsp")).toHaveTextContent("stapled: good, next update 2026-12-08T12:00:00+00:00");
    expect(screen.getByTestId("tls-hostname")).toHaveTextContent("matches example.com (san:example.com)");
  });

  it("says when nothing was stapled and when the certificate does not name the host", () => {
    detail({ chain: CHAIN.slice(0, 1), ocsp: { stapled: false }, hostname_match: { host: "other.test", matched: false, by: null } });
    expect(screen.getByTestId("tls-ocsp")).toHaveTextContent("not stapled");
    const host = screen.getByTestId("tls-hostname");
    expect(host).toHaveTextContent("does not name other.test");
    expect(host.className).toContain("text-red-700");
  });

  it("shows each assertion with what was expected and seen", () => {
    detail({}, {
      assertions: [
        { assertion: "status", expected: "200", passed: true, seen: "200" },
        { assertion: "json.$.status", expected: "ok", passed: false, seen: "down" },
      ],
    });
    const rows = screen.getAllByTestId("http-assertion");
    expect(rows.map((r) => r.dataset.passed)).toEqual(["true", "false"]);
    expect(within(rows[1]).getByText("json.$.status")).toBeInTheDocument();
    expect(rows[1]).toHaveTextContent("expected ok");
    expect(rows[1]).toHaveTextContent("saw down");
    expect(screen.getByText("Assertions (1/2 passed)")).toBeInTheDocument();
  });
});
