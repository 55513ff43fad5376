import { describe, expect, it } from "vitest";
import { OPTION_SPECS } from "../api/spec";
import { buildOptions, DEFAULT_OPTIONS, validateForm, type FormValues } from "./buildRequest";
import { fieldsOf, findField, rangeHint, toApiValue, validateField } from "./optionFields";

const base: FormValues = { target: "example.com", checks: ["http", "ping", "dns", "tcp", "traceroute"], options: DEFAULT_OPTIONS, mode: "all", agents: [], locations: [] };

describe("option fields", () => {
  it("take their limits, choices and defaults from the OpenAPI document", () => {
    const count = findField("ping", "count")!;
    expect([count.control, count.min, count.max, count.placeholder]).toEqual(["number", OPTION_SPECS.ping.count.minimum, OPTION_SPECS.ping.count.maximum, "4"]);
    expect(rangeHint(count)).toBe("1–16, default 4");
    expect(findField("dns", "record_type")!.choices.map((c) => c.value)).toEqual([...OPTION_SPECS.dns.record_type.enum]);
    expect(findField("http", "verify_tls")!.initial).toBe(true);
    expect(findField("http", "ip_version")!.choices).toEqual([
      { value: "", label: "any" },
      { value: "4", label: "IPv4" },
      { value: "6", label: "IPv6" },
    ]);
  });

  it("offer a timeout and an IP version for every type", () => {
    for (const t of base.checks) expect(fieldsOf(t).map((f) => f.key)).toEqual(expect.arrayContaining(["timeout", "ip_version"]));
  });

  it("send nothing when every value is the default", () => {
    expect(buildOptions(base)).toEqual({});
    expect(validateForm(base)).toEqual([]);
  });

  it("convert what the user changed to the API's types", () => {
    const options = {
      ...DEFAULT_OPTIONS,
      http: { ...DEFAULT_OPTIONS.http, expected_status: "200 - 204", timeout: "2.5", ip_version: "6" },
      ping: { ...DEFAULT_OPTIONS.ping, count: "8" },
    };
    expect(buildOptions({ ...base, options })).toEqual({ http: { expected_status: "200-204", timeout: 2.5, ip_version: 6 }, ping: { count: 8 } });
    expect(toApiValue(findField("http", "expected_status")!, "404")).toBe(404);
  });

  it("check ranges and whole numbers as the API would", () => {
    expect(validateField(findField("ping", "count")!, "17")?.message).toBe("Must be between 1 and 16");
    expect(validateField(findField("ping", "count")!, "2.5")?.message).toBe("Must be a whole number between 1 and 16");
    expect(validateField(findField("ping", "interval")!, "0.3")).toBeNull();
    expect(validateField(findField("http", "timeout")!, "0.5")).toEqual({ field: "options.http.timeout", message: "Must be between 1 and 60" });
  });
});

describe("the http request and assertion fields", () => {
  const http = (values: Record<string, string | boolean>): FormValues => ({
    ...base,
    checks: ["http"],
    options: { ...DEFAULT_OPTIONS, http: { ...DEFAULT_OPTIONS.http, ...values } },
  });

  it("send headers and assertions as objects and basic auth as username and password", () => {
    const opts = buildOptions(
      http({
        method: "POST",
        body: "a=1",
        headers: '{"X-Trace": "1"}',
        auth: "ada:pa:ss",
        expect: '{"status": [200], "json": {"$.ok": true}}',
        http_version: "2",
      }),
    );
    expect(opts).toEqual({
      http: {
        method: "POST",
        body: "a=1",
        headers: { "X-Trace": "1" },
        auth: { username: "ada", password: "pa:ss" },
        expect: { status: [200], json: { "$.ok": true } },
        http_version: "2",
      },
    });
  });

  it("name the field when headers or assertions are not a JSON object", () => {
    expect(validateForm(http({ headers: "X-Trace: 1", expect: "[1]" }))).toEqual([
      { field: "options.http.headers", message: expect.stringContaining("JSON object") },
      { field: "options.http.expect", message: "Must be a JSON object" },
    ]);
    expect(validateField(findField("http", "auth")!, "ada")).toEqual({ field: "options.http.auth", message: "Use user:password" });
  });

  it("offer the methods, HTTP versions and DNS protocols the API knows", () => {
    expect(findField("http", "method")!.choices.map((c) => c.value)).toEqual(["GET", "HEAD", "OPTIONS", "POST"]);
    expect(findField("http", "http_version")!.choices.map((c) => c.label)).toEqual(["HTTP/1.1", "HTTP/2 (h2)"]);
    expect(findField("dns", "protocol")!.choices.map((c) => c.value)).toEqual(["udp", "tcp", "dot", "doh"]);
    expect(toApiValue(findField("dns", "dnssec")!, true)).toBe(true);
  });
});
