import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/client";
import * as endpoints from "../api/endpoints";
import { renderRoute } from "../test/utils";
import { NewCheckForm } from "./NewCheckForm";
import { myChecks } from "../lib/myChecks";

vi.mock("../api/endpoints", () => ({
  createCheck: vi.fn(),
  listAgents: vi.fn(),
  getCheck: vi.fn(),
  listChecks: vi.fn(),
  getAgentStats: vi.fn(),
}));

const createCheck = vi.mocked(endpoints.createCheck);
const listAgents = vi.mocked(endpoints.listAgents);

function renderForm() {
  return renderRoute(<NewCheckForm />, {
    extraRoutes: [{ path: "/results/:id", element: <div data-testid="results-route">results</div> }],
  });
}

beforeEach(() => {
  createCheck.mockReset();
  listAgents.mockReset();
  listAgents.mockResolvedValue({
    items: [
      { id: "a1", name: "Frankfurt", location: "eu-central", status: "online", last_heartbeat: null, version: "1", capabilities: [], current_tasks: 0 },
      { id: "a2", name: "Virginia", location: "us-east", status: "offline", last_heartbeat: null, version: "1", capabilities: [], current_tasks: 0 },
    ],
    next_cursor: null,
  });
});

describe("NewCheckForm", () => {
  it("validates the target as you type", async () => {
    const user = userEvent.setup();
    renderForm();
    const input = screen.getByTestId("target-input");
    await user.type(input, "exa mple");
    expect(screen.getByTestId("field-error-target")).toHaveTextContent(/spaces/i);
    await user.clear(input);
    await user.type(input, "https://example.com");
    expect(screen.queryByTestId("field-error-target")).not.toBeInTheDocument();
    expect(screen.getByTestId("target-kind")).toHaveTextContent("URL");
  });

  it("does not submit an invalid target", async () => {
    const user = userEvent.setup();
    renderForm();
    await user.click(screen.getByTestId("submit-check"));
    expect(screen.getByTestId("field-error-target")).toHaveTextContent(/enter a hostname/i);
    expect(createCheck).not.toHaveBeenCalled();
  });

  it("posts the check and goes to its results", async () => {
    const user = userEvent.setup();
    createCheck.mockResolvedValue({ check_id: "abc123", status: "pending" });
    renderForm();
    await user.type(screen.getByTestId("target-input"), "example.com");
    await user.click(screen.getByTestId("check-type-ping")); // off
    await user.click(screen.getByTestId("check-type-tcp")); // on
    await user.click(screen.getByTestId("advanced-toggle"));
    await user.type(screen.getByTestId("opt-tcp-port"), "443");
    await user.click(screen.getByTestId("submit-check"));
    await screen.findByTestId("results-route");
    expect(createCheck.mock.calls[0][0]).toEqual({
      target: "example.com",
      checks: ["http", "tcp"],
      options: { tcp: { port: 443 } },
    });
  });

  it("sends the picked agents", async () => {
    const user = userEvent.setup();
    createCheck.mockResolvedValue({ check_id: "x", status: "pending" });
    renderForm();
    await user.type(screen.getByTestId("target-input"), "example.com");
    await user.click(screen.getByTestId("agent-mode-agents"));
    const picker = await screen.findByTestId("agent-picker");
    await user.click(await within(picker).findByText("Virginia"));
    await user.click(screen.getByTestId("submit-check"));
    await screen.findByTestId("results-route");
    expect(createCheck.mock.calls[0][0].agents).toEqual(["a2"]);
  });

  it("shows API 400 errors next to the fields they name", async () => {
    const user = userEvent.setup();
    createCheck.mockRejectedValue(
      new ApiError({
        status: 400,
        code: "validation_error",
        message: "Invalid request",
        details: [
          { field: "target", message: "target is in a blocked range" },
          { field: "checks", message: "unknown check type" },
          { field: "options.http.expected_status", message: "must be a status code or a range like 200-399" },
          { field: "mystery", message: "something else" },
        ],
      }),
    );
    renderForm();
    await user.type(screen.getByTestId("target-input"), "10.0.0.1");
    await user.click(screen.getByTestId("submit-check"));
    expect(await screen.findByTestId("field-error-target")).toHaveTextContent("target is in a blocked range");
    expect(screen.getByTestId("field-error-checks")).toHaveTextContent("unknown check type");
    // the advanced section opens so the option error is visible
    expect(screen.getByTestId("advanced")).toHaveAttribute("open");
    expect(screen.getByTestId("field-error-options.http.expected_status")).toHaveTextContent(/range like 200-399/);
    expect(screen.getByTestId("form-error")).toHaveTextContent("mystery: something else");
    // editing the field clears its server error
    await user.type(screen.getByTestId("target-input"), "0");
    expect(screen.queryByTestId("field-error-target")).not.toBeInTheDocument();
  });

  it("shows when a rate-limited user may retry", async () => {
    const user = userEvent.setup();
    createCheck.mockRejectedValue(new ApiError({ status: 429, code: "rate_limited", message: "Too many", retryAfter: 120 }));
    renderForm();
    await user.type(screen.getByTestId("target-input"), "example.com");
    await user.click(screen.getByTestId("submit-check"));
    const notice = await screen.findByTestId("rate-limit-error");
    expect(notice).toHaveTextContent(/try|run another check in/i);
    expect(screen.getByTestId("retry-after-seconds")).toHaveTextContent(/^(2 min|1 min \d+ s)$/);
    expect(Number(screen.getByTestId("retry-after-seconds").dataset.seconds)).toBeGreaterThan(110);
    expect(screen.getByTestId("submit-check")).toBeDisabled();
  });

  it("says the wait is a guess when the 429 carries no Retry-After", async () => {
    const user = userEvent.setup();
    createCheck.mockRejectedValue(new ApiError({ status: 429, code: "rate_limited", message: "Too many" }));
    renderForm();
    await user.type(screen.getByTestId("target-input"), "example.com");
    await user.click(screen.getByTestId("submit-check"));
    expect(await screen.findByTestId("retry-after-seconds")).toHaveTextContent(/^about (\d+ s|1 min)$/);
  });

  it("sends only the advanced options that differ from the defaults", async () => {
    const user = userEvent.setup();
    createCheck.mockResolvedValue({ check_id: "c9", status: "pending" });
    renderForm();
    await user.type(screen.getByTestId("target-input"), "example.com");
    await user.click(screen.getByTestId("check-type-dns"));
    await user.click(screen.getByTestId("advanced-toggle"));
    await user.click(screen.getByTestId("opt-http-verify_tls"));
    await user.click(screen.getByTestId("opt-http-follow_redirects"));
    await user.selectOptions(screen.getByTestId("opt-dns-record_type"), "MX");
    await user.type(screen.getByTestId("opt-dns-resolver"), "192.0.2.53");
    await user.type(screen.getByTestId("opt-dns-port"), "5353");
    await user.selectOptions(screen.getByTestId("opt-dns-protocol"), "tcp");
    await user.click(screen.getByTestId("submit-check"));
    await waitFor(() => expect(createCheck).toHaveBeenCalled());
    expect(createCheck.mock.calls[0][0]).toEqual({
      target: "example.com",
      checks: ["http", "ping", "dns"],
      options: {
        http: { follow_redirects: false, verify_tls: false },
        dns: { record_type: "MX", resolver: "192.0.2.53", port: 5353, protocol: "tcp" },
      },
    });
  });

  it("flags a DNS resolver port out of range before sending", async () => {
    const user = userEvent.setup();
    renderForm();
    await user.type(screen.getByTestId("target-input"), "example.com");
    await user.click(screen.getByTestId("check-type-dns"));
    await user.click(screen.getByTestId("advanced-toggle"));
    await user.type(screen.getByTestId("opt-dns-port"), "70000");
    await user.click(screen.getByTestId("submit-check"));
    expect(screen.getByTestId("field-error-options.dns.port")).toHaveTextContent(/between 1 and 65535/);
    expect(createCheck).not.toHaveBeenCalled();
  });

  it("shows a network failure as a form error", async () => {
    const user = userEvent.setup();
    createCheck.mockRejectedValue(new ApiError({ network: true, message: "down" }));
    renderForm();
    await user.type(screen.getByTestId("target-input"), "example.com");
    await user.click(screen.getByTestId("submit-check"));
    await waitFor(() => expect(screen.getByTestId("form-error")).toHaveTextContent(/could not be reached/i));
  });
});

describe("NewCheckForm and my checks", () => {
  it("remembers a created check in this browser", async () => {
    const user = userEvent.setup();
    createCheck.mockResolvedValue({ check_id: "mine1", status: "pending" });
    renderForm();
    await user.type(screen.getByTestId("target-input"), "example.com");
    await user.click(screen.getByTestId("submit-check"));
    await screen.findByTestId("results-route");
    expect(myChecks()[0]).toMatchObject({ id: "mine1", target: "example.com" });
  });
});
