import { describe, expect, it } from "vitest";
import { resultsCsv } from "../lib/compare";
import { result } from "../test/utils";
import { checkJsonUrl, curlCommand } from "./ExportBar";

describe("export", () => {
  it("builds a curl command that repeats the API request, quoted for a shell", () => {
    const cmd = curlCommand("http://127.0.0.1:8000/", { target: "it's.example", checks: ["http"], options: { http: { timeout: 1 } } });
    expect(cmd).toBe(
      "curl -sS -X POST 'http://127.0.0.1:8000/api/checks' \\\n" +
        "  -H 'Content-Type: application/json' \\\n" +
        `  -d '{"target":"it'\\''s.example","checks":["http"],"options":{"http":{"timeout":1}}}'`,
    );
    expect(checkJsonUrl("https://api.example/", "c 1")).toBe("https://api.example/api/checks/c%201");
  });

  it("writes one CSV line per result, escaping what needs it", () => {
    const csv = resultsCsv([
      result({ check_type: "ping", address: "192.0.2.1", data: { rtt_ms: { min: 1, avg: 2, max: 3 }, loss_pct: 0 } }),
      result({ check_type: "http", status: "failed", success: false, data: null, error: { kind: "timeout", message: 'no answer, "15 s"' } }),
    ]);
    const lines = csv.trimEnd().split("\r\n");
    expect(lines[0]).toBe("agent,location,check_type,status,success,address,latency_ms,duration_ms,summary,error_kind,error_message");
    expect(lines[1]).toBe("Frankfurt,eu-central,ping,completed,true,192.0.2.1,2,10,2 ms avg · 0% loss,,");
    expect(lines[2]).toBe('Frankfurt,eu-central,http,failed,false,,,10,,timeout,"no answer, ""15 s"""');
  });
});
