import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { Verdict } from "../api/types";
import { LayerVerdict } from "./LayerVerdict";

const fra = { id: "a1", name: "fra-1", location: "Frankfurt" };
const sin = { id: "a2", name: "sin-1", location: "Singapore" };

const regional: Verdict = {
  failing_layer: "tls",
  scope: "regional",
  text: "TLS fails from Singapore only",
  layers: { tls: { failed: [sin], ok: [fra] } },
  agents: [
    { agent: fra, layers: { dns: "ok", tcp: "ok", tls: "ok", http: "ok" }, failing_layer: null, failed_by: [] },
    {
      agent: sin,
      layers: { dns: "ok", tcp: "ok", tls: "fail" },
      failing_layer: "tls",
      failed_by: [{ check_type: "http", layer: "tls", error: { kind: "tls_error", message: "bad certificate" } }],
    },
  ],
};

describe("LayerVerdict", () => {
  it("names the failing layer and the region, with each agent's layers", () => {
    render(<LayerVerdict check={{ verdict: regional, check_types: ["http", "tcp"] }} />);
    const box = screen.getByTestId("layer-verdict");
    expect(box.dataset.scope).toBe("regional");
    expect(box.dataset.layer).toBe("tls");
    expect(screen.getByTestId("layer-verdict-text")).toHaveTextContent("Regional: TLS fails from Singapore only");
    const [first, second] = screen.getAllByTestId("layer-agent");
    expect(first).toHaveTextContent("Frankfurt");
    expect(second.dataset.failing).toBe("tls");
    expect(within(second).getByTestId("layer-tls").dataset.state).toBe("fail");
    expect(within(second).getByTestId("layer-tcp").dataset.state).toBe("ok");
    expect(within(second).queryByTestId("layer-http")).not.toBeInTheDocument(); // never reached
  });

  it("says nothing while no agent has a verdict, nor for one type that passed", () => {
    const pending: Verdict = { failing_layer: null, scope: "pending", text: null, layers: {}, agents: [] };
    const { container, rerender } = render(<LayerVerdict check={{ verdict: pending, check_types: ["http", "tcp"] }} />);
    expect(container).toBeEmptyDOMElement();
    const fine: Verdict = {
      ...pending,
      scope: "none",
      text: "DNS and TCP OK from 2/2 agents",
      layers: { dns: { failed: [], ok: [fra, sin] }, tcp: { failed: [], ok: [fra, sin] } },
    };
    rerender(<LayerVerdict check={{ verdict: fine, check_types: ["tcp"] }} />);
    expect(container).toBeEmptyDOMElement();
    const dnsOnly: Verdict = { ...fine, text: "DNS OK from 2/2 agents", layers: { dns: fine.layers.dns } };
    rerender(<LayerVerdict check={{ verdict: dnsOnly, check_types: ["ping", "mtr"] }} />);
    expect(container).toBeEmptyDOMElement();
    rerender(<LayerVerdict check={{ verdict: fine, check_types: ["tcp", "ping"] }} />);
    expect(screen.getByTestId("layer-verdict-text")).toHaveTextContent("DNS and TCP OK from 2/2 agents");
  });
});
