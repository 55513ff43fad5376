/* The dns check's depth: the encrypted transport, DNSSEC and the trace (agent/checks/dnsx.py). */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Data = Record<string, any>;

const td = "px-2 py-1 align-top font-mono text-xs text-slate-800";
const STATUS_CLASS: Record<string, string> = {
  secure: "text-emerald-700",
  bogus: "text-red-700",
  insecure: "text-slate-600",
  indeterminate: "text-amber-700",
};

export function dnssecText(d: Data): string | null {
  const sec = d.dnssec;
  if (!sec || typeof sec !== "object") return null;
  const v = sec.validation ?? {};
  const parts = [String(v.status ?? "unknown")];
  if (v.signer) parts.push(`signed by ${v.signer}`);
  if (Array.isArray(v.key_tags) && v.key_tags.length) parts.push(`key ${v.key_tags.join(", ")}`);
  parts.push(sec.ad ? "AD flag set" : "no AD flag");
  return parts.join(" · ") + (v.error ? ` (${v.error})` : "");
}

export function DnsDepth({ d }: { d: Data }) {
  const sec = dnssecText(d);
  const transport = d.transport && typeof d.transport === "object" ? d.transport : null;
  const steps: Data[] = Array.isArray(d.trace) ? d.trace : [];
  if (!sec && !transport && steps.length === 0) return null;
  return (
    <div className="space-y-3" data-testid="dns-depth">
      {transport && (
        <p className="text-sm" data-testid="dns-transport">
          {d.protocol === "doh" ? "DNS over HTTPS" : "DNS over TLS"}: {transport.tls_version ?? "TLS"}
          {transport.alpn ? `, ALPN ${transport.alpn}` : ""}, connect {transport.connect_ms} ms, TLS {transport.tls_ms} ms
        </p>
      )}
      {sec && (
        <p className={`text-sm font-mono ${STATUS_CLASS[d.dnssec?.validation?.status] ?? ""}`} data-testid="dns-dnssec">
          DNSSEC {sec}
        </p>
      )}
      {steps.length > 0 && (
        <table className="w-full min-w-0" data-testid="dns-trace">
          <tbody>
            {steps.map((s, i) => (
              <tr key={i} className="border-t border-slate-100" data-testid="dns-trace-step">
                <td className={td}>{s.zone}</td>
                <td className={td}>
                  {s.server}
                  {s.server_name ? ` (${s.server_name})` : ""}
                </td>
                <td className={td}>{s.rcode ?? s.error ?? "—"}</td>
                <td className={`${td} break-all`}>
                  {Array.isArray(s.referral) && s.referral.length
                    ? `→ ${s.referral.join(", ")}${s.ds?.length ? " (DS)" : ""}`
                    : `${(s.answers ?? []).length} answers`}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
