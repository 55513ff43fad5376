import { describe, expect, it } from "vitest";
import { validateTarget } from "./validateTarget";

describe("validateTarget", () => {
  it.each([
    ["example.com", "hostname"],
    ["sub.example-site.co.uk", "hostname"],
    ["localhost", "hostname"],
    ["example.com.", "hostname"],
    ["_sip._tcp.example.com", "hostname"],
    ["192.0.2.1", "ipv4"],
    ["127.0.0.1", "ipv4"],
    ["2001:db8::1", "ipv6"],
    ["::1", "ipv6"],
    ["[2001:db8::1]", "ipv6"],
    ["https://example.com", "url"],
    ["http://127.0.0.1:8080/path?q=1", "url"],
    ["https://[2001:db8::1]:8443/", "url"],
    ["  example.com  ", "hostname"],
  ])("accepts %s as %s", (input, kind) => {
    const v = validateTarget(input);
    expect(v.ok).toBe(true);
    if (v.ok) expect(v.kind).toBe(kind);
  });

  it.each([
    ["", /enter a hostname/i],
    ["exa mple.com", /spaces/i],
    ["-bad.example.com", /not a valid/i],
    ["bad-.example.com", /not a valid/i],
    ["a".repeat(64) + ".com", /not a valid/i],
    ["example..com", /not a valid/i],
    ["ftp://example.com", /only http/i],
    ["example.com/path", /scheme/i],
    ["256.1.1.1", /ipv4/i],
    ["1.2.3", /ipv4/i],
    ["2130706433", /ipv4/i],
    ["0x7f.1", /ipv4/i],
    ["http://0x7f.1/", /ipv4/i],
    ["http://", /not a valid url|no host/i],
    ["2001:db8:::1", /not a valid/i],
    ["exam!ple.com", /not a valid/i],
  ])("rejects %j", (input, msg) => {
    const v = validateTarget(input);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.message).toMatch(msg);
  });
});
