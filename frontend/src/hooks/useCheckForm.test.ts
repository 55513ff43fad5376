import { describe, expect, it } from "vitest";
import { checkFormReducer, initialFormState } from "./useCheckForm";

describe("checkFormReducer", () => {
  it("keeps the check types in the API's order", () => {
    let s = initialFormState({ checks: [] });
    s = checkFormReducer(s, { type: "toggleCheck", check: "tcp" });
    s = checkFormReducer(s, { type: "toggleCheck", check: "http" });
    expect(s.checks).toEqual(["http", "tcp"]);
    expect(checkFormReducer(s, { type: "toggleCheck", check: "tcp" }).checks).toEqual(["http"]);
  });

  it("clears a field's errors when it is edited, and opens the advanced section for option errors", () => {
    let s = checkFormReducer(initialFormState(), {
      type: "errors",
      details: [
        { field: "target", message: "blocked" },
        { field: "options.ping.count", message: "too many" },
      ],
    });
    expect(s.advancedOpen).toBe(true);
    s = checkFormReducer(s, { type: "option", check: "ping", key: "count", value: "3" });
    expect(s.fieldErrors).toEqual({ target: ["blocked"] });
    expect(s.options.ping.count).toBe("3");
    s = checkFormReducer(s, { type: "target", value: "example.org" });
    expect(s.fieldErrors).toEqual({});
  });

  it("toggles agents and locations and forgets their errors on a mode change", () => {
    let s = checkFormReducer(initialFormState(), { type: "errors", details: [{ field: "agents", message: "pick one" }] });
    s = checkFormReducer(s, { type: "mode", mode: "agents" });
    expect(s.fieldErrors).toEqual({});
    s = checkFormReducer(checkFormReducer(s, { type: "toggleAgent", id: "a1" }), { type: "toggleAgent", id: "a2" });
    expect(checkFormReducer(s, { type: "toggleAgent", id: "a1" }).agents).toEqual(["a2"]);
  });
});
