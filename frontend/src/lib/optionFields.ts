import { OPTION_SPECS } from "../api/spec";
import type { CheckType, FieldDetail } from "../api/types";

/** One option's JSON Schema bits, as generated into api/spec.ts from the OpenAPI document. */
export interface OptionSpec {
  type: string | readonly string[];
  enum?: readonly (string | number | null)[];
  minimum?: number;
  maximum?: number;
  default?: unknown;
  description?: string;
}

export type Control = "select" | "text" | "number" | "checkbox";

/** What the form knows about an option beyond its spec: how to label and check it. */
interface FieldMeta {
  type: CheckType;
  key: string;
  label: string;
  placeholder?: string;
  help?: string;
  mono?: boolean;
  /** Labels of the enum values ("" stands for null). */
  choiceLabels?: Record<string, string>;
  validate?: (value: string) => string | null;
  /** Shown (and sent) only when this says so of the type's other values, e.g. a port only for tcp/udp. */
  shownWhen?: (values: Record<string, string | boolean> | undefined) => boolean;
}

export interface OptionField extends FieldMeta {
  control: Control;
  choices: { value: string; label: string }[];
  min?: number;
  max?: number;
  integer: boolean;
  /** The form's starting value: the spec's default for selects and checkboxes, "" (= the API's default) otherwise. */
  initial: string | boolean;
  /** The API's default, as the placeholder and the results' options line show it. */
  apiDefault: unknown;
}

function jsonObject(v: string): string | null {
  try {
    const parsed: unknown = JSON.parse(v);
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? null : "Must be a JSON object";
  } catch {
    return "Must be a JSON object, like {\"name\": \"value\"}";
  }
}

const STATUS_SPEC = /^\s*\d{3}\s*(-\s*\d{3}\s*)?$/;
const IP_VERSION = { "": "any", "4": "IPv4", "6": "IPv6" };

const timeout = (type: CheckType): FieldMeta => ({ type, key: "timeout", label: "Timeout (s)" });
const PROTOCOL_LABELS = { icmp: "ICMP", tcp: "TCP (SYN)", udp: "UDP" };
/** ping, traceroute and mtr: icmp, tcp or udp; the port only for the latter two. */
const probeProtocol = (type: CheckType): FieldMeta[] => [
  {
    type,
    key: "protocol",
    label: "Protocol",
    choiceLabels: PROTOCOL_LABELS,
    help: "TCP sends a SYN to the port and times the SYN-ACK or RST, so it passes networks that drop ICMP.",
  },
  {
    type,
    key: "port",
    label: "Port",
    placeholder: type === "ping" ? "tcp: the URL's, else 443; udp: 33434" : "tcp: 443; udp: 33434",
    help: "tcp and udp only.",
    shownWhen: (values) => (values?.protocol ?? "icmp") !== "icmp",
  },
];
const ipVersion = (type: CheckType, help?: string): FieldMeta => ({
  type,
  key: "ip_version",
  label: "IP version",
  choiceLabels: IP_VERSION,
  help,
});

/** Every option the form offers, in the order it shows them. Limits, choices and defaults come from the spec. */
const META: FieldMeta[] = [
  { type: "http", key: "method", label: "Method" },
  {
    type: "http",
    key: "expected_status",
    label: "Expected status",
    validate: (v) => (STATUS_SPEC.test(v) ? null : "Use a status code (200) or a range (200-399)"),
  },
  { type: "http", key: "verify_tls", label: "Verify TLS", help: "Off: a self-signed or expired certificate does not fail the check (its details are still shown)" },
  { type: "http", key: "follow_redirects", label: "Follow redirects" },
  { type: "http", key: "max_redirects", label: "Max redirects" },
  { type: "http", key: "http_version", label: "HTTP version", choiceLabels: { "1.1": "HTTP/1.1", "2": "HTTP/2 (h2)" } },
  { type: "http", key: "ocsp", label: "Ask for OCSP staple", help: "Report whether the server staples an OCSP response (as browsers ask)" },
  {
    type: "http",
    key: "headers",
    label: "Request headers",
    placeholder: '{"Accept-Language": "de"}',
    mono: true,
    help: "A JSON object of up to 16 headers. A Host header may not name a private address.",
    validate: (v) => jsonObject(v),
  },
  { type: "http", key: "body", label: "Body (POST)", mono: true, help: "Sent with POST only, at most 8 KB." },
  {
    type: "http",
    key: "auth",
    label: "Basic auth",
    placeholder: "user:password",
    mono: true,
    help: "Sent to the target only; the password is never shown again.",
    validate: (v) => (v.includes(":") ? null : "Use user:password"),
  },
  {
    type: "http",
    key: "expect",
    label: "Assertions",
    placeholder: '{"status": [200], "body_contains": "ok", "json": {"$.status": "ok"}}',
    mono: true,
    help: "A JSON object: status, headers, body_contains, body_matches, json. A failed one fails the check (assertion failed).",
    validate: (v) => jsonObject(v),
  },
  timeout("http"),
  ipVersion("http"),
  { type: "ping", key: "count", label: "Packets" },
  { type: "ping", key: "interval", label: "Interval (s)" },
  ...probeProtocol("ping"),
  timeout("ping"),
  ipVersion("ping"),
  { type: "dns", key: "record_type", label: "Record type", help: "An IP target is always a PTR lookup." },
  {
    type: "dns",
    key: "resolver",
    label: "Resolver",
    placeholder: "system",
    mono: true,
    help: "An IP or hostname; empty uses each agent's own resolver.",
    validate: (v) => (/\s/.test(v) ? "A resolver is one address or hostname, without spaces" : null),
  },
  { type: "dns", key: "port", label: "Resolver port" },
  {
    type: "dns",
    key: "protocol",
    label: "Protocol",
    choiceLabels: { udp: "UDP", tcp: "TCP", dot: "DNS over TLS", doh: "DNS over HTTPS" },
  },
  { type: "dns", key: "dnssec", label: "DNSSEC", help: "Ask for signatures (DO bit) and validate the answer" },
  { type: "dns", key: "trace", label: "Trace from the root", help: "Follow the delegations from the root servers, as dig +trace (UDP/TCP)" },
  timeout("dns"),
  ipVersion("dns", "The resolver's address family."),
  { type: "tcp", key: "port", label: "Port", placeholder: "the URL's, else 443" },
  timeout("tcp"),
  ipVersion("tcp"),
  { type: "traceroute", key: "max_hops", label: "Max hops" },
  { type: "traceroute", key: "probes", label: "Probes per hop" },
  ...probeProtocol("traceroute"),
  timeout("traceroute"),
  ipVersion("traceroute"),
  { type: "mtr", key: "count", label: "Rounds" },
  { type: "mtr", key: "interval", label: "Interval (s)" },
  { type: "mtr", key: "max_hops", label: "Max hops" },
  ...probeProtocol("mtr"),
  timeout("mtr"),
  ipVersion("mtr"),
];

function specOf(type: CheckType, key: string): OptionSpec {
  const spec = (OPTION_SPECS as unknown as Record<string, Record<string, OptionSpec>>)[type]?.[key];
  if (!spec) throw new Error(`the API has no option ${type}.${key}`);
  return spec;
}

function typesOf(spec: OptionSpec): string[] {
  return Array.isArray(spec.type) ? [...spec.type] : [spec.type as string];
}

function controlOf(spec: OptionSpec): Control {
  const types = typesOf(spec);
  if (spec.enum) return "select";
  if (types.includes("boolean")) return "checkbox";
  if (types.includes("string") || types.includes("array") || types.includes("object")) return "text";
  return "number";
}

function toField(meta: FieldMeta): OptionField {
  const spec = specOf(meta.type, meta.key);
  const control = controlOf(spec);
  // null ("any", the usual default) first.
  const values = [...(spec.enum ?? [])].sort((a, b) => Number(a !== null) - Number(b !== null));
  const choices = values.map((v) => {
    const value = v === null ? "" : String(v);
    return { value, label: meta.choiceLabels?.[value] ?? value };
  });
  const initial =
    control === "checkbox" ? Boolean(spec.default) : control === "select" ? (spec.default == null ? "" : String(spec.default)) : "";
  return {
    ...meta,
    control,
    choices,
    min: spec.minimum,
    max: spec.maximum,
    integer: !typesOf(spec).includes("number"),
    initial,
    apiDefault: spec.default ?? null,
    placeholder: meta.placeholder ?? (spec.default != null ? String(spec.default) : undefined),
    help: meta.help ?? spec.description,
  };
}

export const OPTION_FIELDS: OptionField[] = META.map(toField);

export function fieldsOf(type: string): OptionField[] {
  return OPTION_FIELDS.filter((f) => f.type === type);
}

/** The fields of a type that apply with these values (see FieldMeta.shownWhen). */
export function shownFieldsOf(type: string, values: Record<string, string | boolean> | undefined): OptionField[] {
  return fieldsOf(type).filter((f) => !f.shownWhen || f.shownWhen(values));
}

export function findField(type: string, key: string): OptionField | undefined {
  return OPTION_FIELDS.find((f) => f.type === type && f.key === key);
}

export const fieldPath = (f: Pick<OptionField, "type" | "key">) => `options.${f.type}.${f.key}`;

/** The hint under a number field: "1–16, default 4". */
export function rangeHint(f: OptionField): string | null {
  if (f.control !== "number" || f.min === undefined) return null;
  const def = f.apiDefault != null ? `, default ${f.apiDefault}` : "";
  return `${f.min}–${f.max}${def}`;
}

export type OptionValues = Record<string, Record<string, string | boolean>>;

/** The form's starting option values, every type. */
export function initialOptions(): OptionValues {
  const out: OptionValues = {};
  for (const f of OPTION_FIELDS) (out[f.type] ??= {})[f.key] = f.initial;
  return out;
}

function checkNumber(f: OptionField, v: string): string | null {
  const n = Number(v);
  const range = `between ${f.min} and ${f.max}`;
  if (!Number.isFinite(n) || (f.integer && !/^\d+$/.test(v))) return f.integer ? `Must be a whole number ${range}` : `Must be a number ${range}`;
  if ((f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max)) return `Must be ${range}`;
  return null;
}

/** The errors of one field's value, in the API's error-detail shape; an empty text means "the API's default". */
export function validateField(f: OptionField, value: string | boolean): FieldDetail | null {
  if (typeof value !== "string") return null;
  const v = value.trim();
  if (!v) return null;
  const message = (f.control === "number" ? checkNumber(f, v) : null) ?? f.validate?.(v) ?? null;
  return message ? { field: fieldPath(f), message } : null;
}

/** The value the API wants for a form value, or undefined when it is the default (so the API's default applies). */
export function toApiValue(f: OptionField, value: string | boolean): unknown {
  if (f.control === "checkbox") return value === f.initial ? undefined : value;
  const v = String(value).trim();
  if (f.control === "select") {
    if (v === f.initial) return undefined;
    // The enum's own value: 6 for "6", null for "" (any).
    const raw = specOf(f.type, f.key).enum?.find((e) => String(e ?? "") === v);
    return raw === undefined ? v : raw;
  }
  if (!v) return undefined;
  if (f.control === "number") return Number(v);
  if (f.key === "expected_status") return /^\d+$/.test(v) ? Number(v) : v.replace(/\s+/g, "");
  if (f.key === "headers" || f.key === "expect") return JSON.parse(v) as unknown;
  if (f.key === "auth") {
    const at = v.indexOf(":");
    return { username: v.slice(0, at), password: v.slice(at + 1) };
  }
  return v;
}
