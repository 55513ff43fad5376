import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { result } from "../../test/utils";
import { DnsDetail } from "./Details";

const BASE = { record_type: "A", resolver: "127.0.0.1", rcode: "NOERROR", answers: [{ name: "example.test.", type: "A", ttl: 300, value: "198.18.7.7" }] };

describe("the DNS depth view", () => {
  it("shows the DNSSEC status, signer and AD flag, and the transport", () => {
    const data = {
      ...BASE,
      protocol: "dot",
      transport: { tls_version: "TLSv1.3", connect_ms: 1.2, tls_ms: 3.4, alpn: null },
      dnssec: { ad: false, rrsigs: [], validation: { status: "secure", signer: "example.test.", key_tags: [5599], error: null } },
    };
    render(<DnsDetail r={result({ check_type: "dns", data })} />);
    const sec = screen.getByTestId("dns-dnssec");
    expect(sec).toHaveTextContent("DNSSEC secure · signed by example.test. · key 5599 · no AD flag");
    expect(sec.className).toContain("text-emerald-700");
    expect(screen.getByTestId("dns-transport")).toHaveTextContent("DNS over TLS: TLSv1.3, connect 1.2 ms, TLS 3.4 ms");
  });

  it("lists each step of a trace with its referral", () => {
    const trace = [
      { zone: ".", server: "127.0.0.1", server_name: null, rcode: "NOERROR", referral: ["ns.test."], ds: [] },
      { zone: "test.", server: "127.0.0.2", server_name: "ns.test.", rcode: "NOERROR", referral: ["ns.example.test."], ds: ["5599 15 2 ab"] },
      { zone: "example.test.", server: "127.0.0.3", server_name: "ns.example.test.", rcode: "NOERROR", referral: [], answers: [{}] },
    ];
    render(<DnsDetail r={result({ check_type: "dns", data: { ...BASE, trace } })} />);
    const steps = screen.getAllByTestId("dns-trace-step");
    expect(steps).toHaveLength(3);
    expect(steps[0]).toHaveTextContent("→ ns.test.");
    expect(steps[1]).toHaveTextContent("127.0.0.2 (ns.test.)");
    expect(steps[1]).toHaveTextContent("→ ns.example.test. (DS)");
    expect(steps[2]).toHaveTextContent("1 answers");
  });

  it("adds nothing to a plain query", () => {
    render(<DnsDetail r={result({ check_type: "dns", data: BASE })} />);
    expect(screen.queryByTestId("dns-depth")).not.toBeInTheDocument();
  });
});
