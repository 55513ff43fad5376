import type { CheckOptions, CreateCheckRequest } from "../api/types";
import type { FieldDetail } from "../api/types";
import { validateTarget } from "./validateTarget";

export interface OptionValues {
  http: { method: string; expected_status: string; follow_redirects: boolean; verify_tls: boolean };
  ping: { count: string };
  dns: { record_type: string; resolver: string; port: string; protocol: string };
  tcp: { port: string };
  traceroute: { max_hops: string };
}

export const DEFAULT_OPTIONS: OptionValues = {
  http: { method: "GET", expected_status: "", follow_redirects: true, verify_tls: true },
  ping: { count: "" },
  dns: { record_type: "A", resolver: "", port: "", protocol: "udp" },
  tcp: { port: "" },
  traceroute: { max_hops: "" },
};

export type SelectionMode = "all" | "locations" | "agents";

export interface FormValues {
  target: string;
  checks: string[];
  options: OptionValues;
  mode: SelectionMode;
  agents: string[];
  locations: string[];
}

const STATUS_SPEC = /^\s*\d{3}\s*(-\s*\d{3}\s*)?$/;

function intIn(v: string, lo: number, hi: number): boolean {
  return /^\d+$/.test(v) && Number(v) >= lo && Number(v) <= hi;
}

/** Client-side checks, in the API's error-detail shape so both show the same way. */
export function validateForm(v: FormValues): FieldDetail[] {
  const errs: FieldDetail[] = [];
  const t = validateTarget(v.target);
  if (!t.ok) errs.push({ field: "target", message: t.message });
  if (v.checks.length === 0) errs.push({ field: "checks", message: "Pick at least one check type" });
  const o = v.options;
  const on = (type: string) => v.checks.includes(type);
  if (on("http") && o.http.expected_status.trim() && !STATUS_SPEC.test(o.http.expected_status.trim()))
    errs.push({ field: "options.http.expected_status", message: "Use a status code (200) or a range (200-399)" });
  if (on("ping") && o.ping.count.trim() && !intIn(o.ping.count.trim(), 1, 16))
    errs.push({ field: "options.ping.count", message: "Between 1 and 16 packets" });
  if (on("dns") && o.dns.port.trim() && !intIn(o.dns.port.trim(), 1, 65535))
    errs.push({ field: "options.dns.port", message: "Port must be between 1 and 65535" });
  if (on("dns") && /\s/.test(o.dns.resolver.trim()))
    errs.push({ field: "options.dns.resolver", message: "A resolver is one address or hostname, without spaces" });
  if (on("tcp") && o.tcp.port.trim() && !intIn(o.tcp.port.trim(), 1, 65535))
    errs.push({ field: "options.tcp.port", message: "Port must be between 1 and 65535" });
  if (on("traceroute") && o.traceroute.max_hops.trim() && !intIn(o.traceroute.max_hops.trim(), 1, 64))
    errs.push({ field: "options.traceroute.max_hops", message: "Between 1 and 64 hops" });
  if (v.mode === "agents" && v.agents.length === 0) errs.push({ field: "agents", message: "Pick at least one agent" });
  if (v.mode === "locations" && v.locations.length === 0)
    errs.push({ field: "locations", message: "Pick at least one location" });
  return errs;
}

/** Only what the user set goes into options: the API applies its own defaults. */
export function buildOptions(v: FormValues): CheckOptions {
  const o = v.options;
  const out: CheckOptions = {};
  const on = (type: string) => v.checks.includes(type);
  if (on("http")) {
    const http: Record<string, unknown> = {};
    if (o.http.method && o.http.method !== "GET") http.method = o.http.method;
    const es = o.http.expected_status.trim();
    if (es) http.expected_status = /^\d+$/.test(es) ? Number(es) : es.replace(/\s+/g, "");
    if (o.http.follow_redirects === false) http.follow_redirects = false;
    if (o.http.verify_tls === false) http.verify_tls = false;
    if (Object.keys(http).length) out.http = http;
  }
  if (on("ping") && o.ping.count.trim()) out.ping = { count: Number(o.ping.count) };
  if (on("dns")) {
    const dns: Record<string, unknown> = {};
    if (o.dns.record_type && o.dns.record_type !== "A") dns.record_type = o.dns.record_type;
    if (o.dns.resolver.trim()) dns.resolver = o.dns.resolver.trim();
    if (o.dns.port.trim()) dns.port = Number(o.dns.port);
    if (o.dns.protocol && o.dns.protocol !== "udp") dns.protocol = o.dns.protocol;
    if (Object.keys(dns).length) out.dns = dns;
  }
  if (on("tcp") && o.tcp.port.trim()) out.tcp = { port: Number(o.tcp.port) };
  if (on("traceroute") && o.traceroute.max_hops.trim()) out.traceroute = { max_hops: Number(o.traceroute.max_hops) };
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
