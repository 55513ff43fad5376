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
