import { describe, expect, it } from "vitest";
import { buildRequest, DEFAULT_OPTIONS, validateForm, type FormValues } from "./buildRequest";
import { fieldKeyFor, mapFieldErrors } from "./fieldErrors";

describe("fieldKeyFor", () => {
  it.each([
    ["target", "target"],
    ["body.target", "target"],
    ["checks", "checks"],
    ["checks[1]", "checks"],
    ["checks.0", "checks"],
    ["options.http.expected_status", "options.http.expected_status"],
    ["options/http/expected_status", "options.http.expected_status"],
    ["options.ping.count", "options.ping.count"],
    ["options.http.verify_tls", "options.http.verify_tls"],
    ["options.http.bogus", "options.http"],
    ["options.http", "options.http"],
    ["options", "options"],
    ["agents[0]", "agents"],
    ["locations", "locations"],
    ["something_else", null],
    [undefined, null],
  ])("%s -> %s", (field, key) => {
    expect(fieldKeyFor(field)).toBe(key);
  });
});

describe("mapFieldErrors", () => {
  it("groups messages per field and keeps unknown ones for the form", () => {
    const m = mapFieldErrors([
      { field: "target", message: "blocked" },
      { field: "target", message: "private range" },
      { field: "options.http.expected_status", message: "bad range" },
      { field: "weird", message: "huh" },
      { message: "no field" },
    ]);
    expect(m.fields).toEqual({ target: ["blocked", "private range"], "options.http.expected_status": ["bad range"] });
    expect(m.form).toEqual(["weird: huh", "no field"]);
  });

  it("falls back to the error message when there are no details", () => {
    expect(mapFieldErrors([], "Bad request").form).toEqual(["Bad request"]);
  });
});

const base: FormValues = {
  target: "example.com",
  checks: ["http", "tcp"],
  options: DEFAULT_OPTIONS,
  mode: "all",
  agents: [],
  locations: [],
};

describe("buildRequest / validateForm", () => {
  it("sends only what the user set", () => {
    expect(buildRequest(base)).toEqual({ target: "example.com", checks: ["http", "tcp"] });
  });

  it("converts option values and ignores options of unselected types", () => {
    const req = buildRequest({
      ...base,
      target: "  https://example.com ",
      options: {
        ...DEFAULT_OPTIONS,
        http: { ...DEFAULT_OPTIONS.http, method: "HEAD", expected_status: "200-299" },
        tcp: { port: "443" },
        ping: { count: "8" },
      },
      mode: "agents",
      agents: ["a1"],
    });
    expect(req).toEqual({
      target: "https://example.com",
      checks: ["http", "tcp"],
      options: { http: { method: "HEAD", expected_status: "200-299" }, tcp: { port: 443 } },
      agents: ["a1"],
    });
  });

  it("sends a single expected status as a number", () => {
    const req = buildRequest({ ...base, options: { ...DEFAULT_OPTIONS, http: { ...DEFAULT_OPTIONS.http, expected_status: "204" } } });
    expect(req.options).toEqual({ http: { expected_status: 204 } });
  });

  it("reports client-side errors in the API's shape", () => {
    const errs = validateForm({
      ...base,
      target: "bad target",
      checks: ["tcp", "ping"],
      options: { ...DEFAULT_OPTIONS, tcp: { port: "70000" }, ping: { count: "17" } },
    });
    expect(errs.map((e) => e.field)).toEqual(["target", "options.ping.count", "options.tcp.port"]);
    expect(validateForm({ ...base, checks: [] }).map((e) => e.field)).toEqual(["checks"]);
  });
});
