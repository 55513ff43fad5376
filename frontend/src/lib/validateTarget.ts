import { REQUEST_LIMITS } from "../api/spec";

export type TargetKind = "hostname" | "ipv4" | "ipv6" | "url";

export type TargetValidation =
  | { ok: true; kind: TargetKind; host: string }
  | { ok: false; message: string };

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/i;

export function isIPv4(s: string): boolean {
  const parts = s.split(".");
  if (parts.length !== 4) return false;
  return parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

export function isIPv6(s: string): boolean {
  if (!s.includes(":")) return false;
  const addr = s.split("%")[0]; // allow a zone id
  if (!/^[0-9a-f:.]+$/i.test(addr)) return false;
  try {
    // The URL parser implements the WHATWG IPv6 grammar.
    new URL(`http://[${addr}]/`);
    return true;
  } catch {
    return false;
  }
}

/** Hostname per RFC 1123 (underscores allowed for SRV-style names; trailing dot allowed). */
export function isHostname(s: string): boolean {
  const h = s.endsWith(".") ? s.slice(0, -1) : s;
  if (!h || h.length > 253) return false;
  const labels = h.split(".");
  if (!labels.every((l) => LABEL.test(l))) return false;
  // An all-numeric last label is an (odd) IPv4 spelling, not a name: 2130706433, 127.1, 0x7f.1
  const tld = labels[labels.length - 1];
  if (/^\d+$/.test(tld) || /^0x[0-9a-f]*$/i.test(tld)) return false;
  return true;
}

/** Every label is a number (decimal or hex): an IPv4 spelling, valid or odd. */
function looksNumeric(s: string): boolean {
  const h = s.endsWith(".") ? s.slice(0, -1) : s;
  return h.split(".").every((l) => /^(\d+|0x[0-9a-f]*)$/i.test(l));
}

function validateHost(host: string): TargetValidation {
  if (isIPv4(host)) return { ok: true, kind: "ipv4", host };
  const unbracketed = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (isIPv6(unbracketed)) return { ok: true, kind: "ipv6", host: unbracketed };
  if (looksNumeric(host)) return { ok: false, message: "Not a valid IPv4 address (use dotted form, e.g. 192.0.2.1)" };
  if (isHostname(host)) return { ok: true, kind: "hostname", host: host.toLowerCase() };
  return { ok: false, message: "Not a valid hostname, IP address or URL" };
}

/** Validate a check target as the user types: a hostname, an IPv4/IPv6 address, or an http(s) URL. */
export function validateTarget(raw: string): TargetValidation {
  const s = raw.trim();
  if (!s) return { ok: false, message: "Enter a hostname, IP address or URL" };
  if (/\s/.test(s)) return { ok: false, message: "A target cannot contain spaces" };
  if (s.length > REQUEST_LIMITS.targetMaxLength)
    return { ok: false, message: `Target is too long (at most ${REQUEST_LIMITS.targetMaxLength} characters)` };

  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s);
  if (scheme) {
    const proto = scheme[1].toLowerCase();
    if (proto !== "http" && proto !== "https") {
      return { ok: false, message: `Only http:// and https:// URLs are supported (got ${proto}://)` };
    }
    let url: URL;
    try {
      url = new URL(s);
    } catch {
      return { ok: false, message: "Not a valid URL" };
    }
    // Re-parse the authority ourselves: the URL parser "fixes" odd IPv4 spellings
    // (http://0x7f.1/ becomes 127.0.0.1) and we want to flag them instead.
    const authority = s.slice(scheme[0].length).split(/[/?#]/)[0];
    const hostPort = authority.includes("@") ? authority.slice(authority.lastIndexOf("@") + 1) : authority;
    let host: string;
    const v6 = /^\[([^\]]+)\](?::(\d*))?$/.exec(hostPort);
    if (v6) host = `[${v6[1]}]`;
    else {
      const m = /^(.*?)(?::(\d*))?$/.exec(hostPort);
      host = m ? m[1] : hostPort;
    }
    if (!host) return { ok: false, message: "The URL has no host" };
    if (url.port && (Number(url.port) < 1 || Number(url.port) > 65535)) {
      return { ok: false, message: "Port must be between 1 and 65535" };
    }
    const h = validateHost(host);
    if (!h.ok) return h;
    return { ok: true, kind: "url", host: h.host };
  }

  if (s.includes("/")) return { ok: false, message: "URLs need a scheme: start with http:// or https://" };
  return validateHost(s);
}

export const TARGET_KIND_LABEL: Record<TargetKind, string> = {
  hostname: "Hostname",
  ipv4: "IPv4 address",
  ipv6: "IPv6 address",
  url: "URL",
};
