import type { CheckOptions, CheckType, CreateCheckRequest, FieldDetail } from "../api/types";
import { initialOptions, OPTION_FIELDS, shownFieldsOf, toApiValue, validateField, type OptionValues } from "./optionFields";
import { validateTarget } from "./validateTarget";

export type { OptionValues } from "./optionFields";

export const DEFAULT_OPTIONS: OptionValues = initialOptions();

export type SelectionMode = "all" | "locations" | "agents";

export interface FormValues {
  target: string;
  checks: CheckType[];
  options: OptionValues;
  mode: SelectionMode;
  agents: string[];
  locations: string[];
}

/** Client-side checks, in the API's error-detail shape so both show the same way. */
export function validateForm(v: FormValues): FieldDetail[] {
  const errs: FieldDetail[] = [];
  const t = validateTarget(v.target);
  if (!t.ok) errs.push({ field: "target", message: t.message });
  if (v.checks.length === 0) errs.push({ field: "checks", message: "Pick at least one check type" });
  for (const f of OPTION_FIELDS.filter((o) => v.checks.includes(o.type) && (!o.shownWhen || o.shownWhen(v.options[o.type])))) {
    const err = validateField(f, v.options[f.type]?.[f.key] ?? f.initial);
    if (err) errs.push(err);
  }
  if (v.mode === "agents" && v.agents.length === 0) errs.push({ field: "agents", message: "Pick at least one agent" });
  if (v.mode === "locations" && v.locations.length === 0)
    errs.push({ field: "locations", message: "Pick at least one location" });
  return errs;
}

/** Only what the user changed goes into options: the API applies its own defaults. */
export function buildOptions(v: FormValues): CheckOptions {
  const out: CheckOptions = {};
  for (const type of v.checks) {
    const opts: Record<string, unknown> = {};
    for (const f of shownFieldsOf(type, v.options[type])) {
      const value = toApiValue(f, v.options[type]?.[f.key] ?? f.initial);
      if (value !== undefined) opts[f.key] = value;
    }
    if (Object.keys(opts).length) out[type] = opts;
  }
  return out;
}

export function buildRequest(v: FormValues): CreateCheckRequest {
  const req: CreateCheckRequest = { target: v.target.trim(), checks: [...v.checks] };
  const options = buildOptions(v);
  if (Object.keys(options).length) req.options = options;
  if (v.mode === "agents" && v.agents.length) req.agents = [...v.agents];
  if (v.mode === "locations" && v.locations.length) req.locations = [...v.locations];
  return req;
}
