import { CHECK_TYPES as SPEC_CHECK_TYPES, OPTION_SPECS } from "../api/spec";
import type { CheckType } from "../api/types";

/** The check types, in the API's order (from the OpenAPI document). */
export const CHECK_TYPES: CheckType[] = [...SPEC_CHECK_TYPES];

export const CHECK_LABEL: Record<string, string> = {
  http: "HTTP",
  ping: "Ping",
  dns: "DNS",
  tcp: "TCP",
  traceroute: "Traceroute",
  mtr: "MTR",
};

export function checkLabel(t: string): string {
  return CHECK_LABEL[t] ?? t.toUpperCase();
}

export const DNS_RECORD_TYPES: string[] = [...OPTION_SPECS.dns.record_type.enum];
export const HTTP_METHODS: string[] = [...OPTION_SPECS.http.method.enum];
