import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import * as endpoints from "../../api/endpoints";
import { renderRoute } from "../../test/utils";
import { NewCheckForm } from "../NewCheckForm";

vi.mock("../../api/endpoints", () => ({
  createCheck: vi.fn(),
  listAgents: vi.fn(),
  getCheck: vi.fn(),
  listChecks: vi.fn(),
  getAgentStats: vi.fn(),
}));

const createCheck = vi.mocked(endpoints.createCheck);
// The whole form renders and is typed into, which is slow on a loaded machine.
const SLOW_MS = 30_000;

beforeEach(() => {
  createCheck.mockReset();
  vi.mocked(endpoints.listAgents).mockResolvedValue({ items: [], next_cursor: null });
});

function renderForm() {
  return renderRoute(<NewCheckForm />, {
    extraRoutes: [{ path: "/results/:id", element: <div data-testid="results-route">results</div> }],
  });
}

describe("the probe protocol selector", () => {
  it("offers ICMP, TCP and UDP, and the port only for TCP and UDP", async () => {
    const user = userEvent.setup({ delay: null });
    renderForm();
    await user.click(screen.getByTestId("advanced-toggle"));
    const protocol = screen.getByTestId("opt-ping-protocol") as HTMLSelectElement;
    expect([...protocol.options].map((o) => o.textContent)).toEqual(["ICMP", "TCP (SYN)", "UDP"]);
    expect(protocol.value).toBe("icmp");
    expect(screen.queryByTestId("opt-ping-port")).not.toBeInTheDocument();
    await user.selectOptions(protocol, "tcp");
    expect(screen.getByTestId("opt-ping-port")).toBeInTheDocument();
    await user.selectOptions(protocol, "icmp");
    expect(screen.queryByTestId("opt-ping-port")).not.toBeInTheDocument();
  }, SLOW_MS);

  it("sends a TCP ping with its port, and an mtr with its rounds", async () => {
    const user = userEvent.setup({ delay: null });
    createCheck.mockResolvedValue({ check_id: "abc", status: "pending" });
    renderForm();
    await user.type(screen.getByTestId("target-input"), "example.com");
    await user.click(screen.getByTestId("check-type-http")); // off
    await user.click(screen.getByTestId("check-type-mtr")); // on
    await user.click(screen.getByTestId("advanced-toggle"));
    await user.selectOptions(screen.getByTestId("opt-ping-protocol"), "tcp");
    await user.type(screen.getByTestId("opt-ping-port"), "8443");
    await user.type(screen.getByTestId("opt-mtr-count"), "5");
    await user.selectOptions(screen.getByTestId("opt-mtr-protocol"), "udp");
    await user.click(screen.getByTestId("submit-check"));
    await screen.findByTestId("results-route");
    expect(createCheck.mock.calls[0][0]).toEqual({
      target: "example.com",
      checks: ["ping", "mtr"],
      options: { ping: { protocol: "tcp", port: 8443 }, mtr: { count: 5, protocol: "udp" } },
    });
  }, SLOW_MS);

  it("does not send a port typed for TCP once ICMP is chosen again", async () => {
    const user = userEvent.setup({ delay: null });
    createCheck.mockResolvedValue({ check_id: "abc", status: "pending" });
    renderForm();
    await user.type(screen.getByTestId("target-input"), "example.com");
    await user.click(screen.getByTestId("advanced-toggle"));
    await user.selectOptions(screen.getByTestId("opt-ping-protocol"), "tcp");
    await user.type(screen.getByTestId("opt-ping-port"), "22");
    await user.selectOptions(screen.getByTestId("opt-ping-protocol"), "icmp");
    await user.click(screen.getByTestId("submit-check"));
    await screen.findByTestId("results-route");
    expect(createCheck.mock.calls[0][0].options).toBeUndefined();
  }, SLOW_MS);
});
