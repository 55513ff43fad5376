import type { CheckType } from "../api/types";

export const CHECK_TYPES: CheckType[] = ["http", "ping", "dns", "tcp", "traceroute"];

export const CHECK_LABEL: Record<string, string> = {
  http: "HTTP",
  ping: "Ping",
  dns: "DNS",
  tcp: "TCP",
  traceroute: "Traceroute",
};

export function checkLabel(t: string): string {
  return CHECK_LABEL[t] ?? t.toUpperCase();
}

export const DNS_RECORD_TYPES = ["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "CAA", "SRV", "PTR"];
export const HTTP_METHODS = ["GET", "HEAD"];
