import { useReducer } from "react";
import type { CheckType, FieldDetail } from "../api/types";
import { DEFAULT_OPTIONS, type FormValues, type SelectionMode } from "../lib/buildRequest";
import { CHECK_TYPES } from "../lib/checkTypes";
import { mapFieldErrors } from "../lib/fieldErrors";

export interface CheckFormState extends FormValues {
  targetTouched: boolean;
  advancedOpen: boolean;
  fieldErrors: Record<string, string[]>;
  formErrors: string[];
}

export type CheckFormAction =
  | { type: "target"; value: string }
  | { type: "touchTarget" }
  | { type: "toggleCheck"; check: CheckType }
  | { type: "option"; check: string; key: string; value: string | boolean }
  | { type: "mode"; mode: SelectionMode }
  | { type: "toggleAgent"; id: string }
  | { type: "toggleLocation"; location: string }
  | { type: "advanced"; open: boolean }
  | { type: "errors"; details: FieldDetail[]; fallback?: string }
  | { type: "clearErrors" };

export function initialFormState(initial?: Partial<FormValues>): CheckFormState {
  return {
    target: initial?.target ?? "",
    checks: initial?.checks ?? ["http", "ping"],
    options: initial?.options ?? DEFAULT_OPTIONS,
    mode: initial?.mode ?? "all",
    agents: initial?.agents ?? [],
    locations: initial?.locations ?? [],
    targetTouched: false,
    advancedOpen: false,
    fieldErrors: {},
    formErrors: [],
  };
}

function withoutErrors(errors: Record<string, string[]>, ...fields: string[]): Record<string, string[]> {
  if (!fields.some((f) => f in errors)) return errors;
  const next = { ...errors };
  fields.forEach((f) => delete next[f]);
  return next;
}

const toggle = <T,>(list: T[], v: T) => (list.includes(v) ? list.filter((x) => x !== v) : [...list, v]);

/** Every change the new-check form can make; editing a field clears the errors shown for it. */
export function checkFormReducer(s: CheckFormState, a: CheckFormAction): CheckFormState {
  switch (a.type) {
    case "target":
      return { ...s, target: a.value, fieldErrors: withoutErrors(s.fieldErrors, "target") };
    case "touchTarget":
      return s.targetTouched ? s : { ...s, targetTouched: true };
    case "toggleCheck": {
      // Keep the API's order whatever order they were clicked in.
      const on = toggle(s.checks, a.check);
      return { ...s, checks: CHECK_TYPES.filter((t) => on.includes(t)), fieldErrors: withoutErrors(s.fieldErrors, "checks") };
    }
    case "option":
      return {
        ...s,
        options: { ...s.options, [a.check]: { ...s.options[a.check], [a.key]: a.value } },
        fieldErrors: withoutErrors(s.fieldErrors, `options.${a.check}.${a.key}`, `options.${a.check}`),
      };
    case "mode":
      return { ...s, mode: a.mode, fieldErrors: withoutErrors(s.fieldErrors, "agents", "locations") };
    case "toggleAgent":
      return { ...s, agents: toggle(s.agents, a.id), fieldErrors: withoutErrors(s.fieldErrors, "agents") };
    case "toggleLocation":
      return { ...s, locations: toggle(s.locations, a.location), fieldErrors: withoutErrors(s.fieldErrors, "locations") };
    case "advanced":
      return { ...s, advancedOpen: a.open };
    case "errors": {
      const mapped = mapFieldErrors(a.details, a.fallback);
      const optionError = Object.keys(mapped.fields).some((f) => f.startsWith("options"));
      return { ...s, fieldErrors: mapped.fields, formErrors: mapped.form, advancedOpen: s.advancedOpen || optionError };
    }
    case "clearErrors":
      return { ...s, fieldErrors: {}, formErrors: [] };
  }
}

export function useCheckForm(initial?: Partial<FormValues>) {
  return useReducer(checkFormReducer, initial, initialFormState);
}
