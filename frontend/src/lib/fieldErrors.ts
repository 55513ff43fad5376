import type { FieldDetail } from "../api/types";
import { fieldPath, OPTION_FIELDS } from "./optionFields";

/** The option fields the new-check form can show an error next to (options.http.method, ...). */
const OPTION_PATHS = OPTION_FIELDS.map(fieldPath);

export const TOP_FIELDS = ["target", "checks", "agents", "locations", "limit"] as const;

const KNOWN = new Set<string>([...TOP_FIELDS, ...OPTION_PATHS]);

/**
 * Which form field an API error detail belongs to, or null for the form as a whole.
 * Accepts the spellings APIs use: "target", "body.target", "checks[1]", "checks.1",
 * "options.http.expected_status", "options/http/expected_status", "options.http" (the
 * type's group), "options" (the advanced section).
 */
export function fieldKeyFor(field: string | undefined | null): string | null {
  if (!field) return null;
  let f = field
    .trim()
    .replace(/^\/+/, "")
    .replace(/\//g, ".")
    .replace(/\[(\w+)\]/g, ".$1")
    .replace(/^body\./, "")
    .replace(/^\$\./, "");
  f = f.replace(/\.\d+$/, "");
  if (KNOWN.has(f)) return f;
  const parts = f.split(".");
  if (parts[0] === "checks") return "checks";
  if (parts[0] === "agents") return "agents";
  if (parts[0] === "locations") return "locations";
  if (parts[0] === "options") {
    if (parts.length >= 3 && KNOWN.has(parts.slice(0, 3).join("."))) return parts.slice(0, 3).join(".");
    if (parts.length >= 2) return `options.${parts[1]}`;
    return "options";
  }
  return null;
}

export interface MappedErrors {
  fields: Record<string, string[]>;
  form: string[];
}

export function mapFieldErrors(details: FieldDetail[], fallbackMessage?: string): MappedErrors {
  const out: MappedErrors = { fields: {}, form: [] };
  for (const d of details) {
    const key = fieldKeyFor(d.field);
    if (key) (out.fields[key] ??= []).push(d.message);
    else out.form.push(d.field ? `${d.field}: ${d.message}` : d.message);
  }
  if (Object.keys(out.fields).length === 0 && out.form.length === 0 && fallbackMessage) {
    out.form.push(fallbackMessage);
  }
  return out;
}
