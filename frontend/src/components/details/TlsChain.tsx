/* The TLS view beyond the leaf: every certificate the server sent, OCSP stapling, ALPN and the
   SAN/hostname match (agent/checks/tlsview.py). */

interface ChainCert {
  subject: string;
  issuer: string;
  not_before?: string;
  not_after?: string;
  key_type?: string;
  key_bits?: number | null;
  curve?: string | null;
  fingerprint_sha256: string;
  is_ca?: boolean;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Tls = Record<string, any>;

const td = "px-2 py-1 align-top font-mono text-xs text-slate-800";

function key(c: ChainCert): string {
  if (!c.key_type) return "—";
  return [c.key_type, c.key_bits ?? "", c.curve ? `(${c.curve})` : ""].filter(Boolean).join(" ");
}

export function ocspText(tls: Tls): string {
  const o = tls.ocsp;
  if (!o || o.stapled === null || o.stapled === undefined) return "not checked";
  if (!o.stapled) return "not stapled";
  return `stapled: ${o.cert_status ?? o.status ?? "?"}${o.next_update ? `, next update ${o.next_update}` : ""}`;
}

export function hostnameText(tls: Tls): { text: string; ok: boolean | null } {
  const m = tls.hostname_match;
  if (!m || m.matched === null || m.matched === undefined) return { text: "—", ok: null };
  return m.matched ? { text: `matches ${m.host} (${m.by})`, ok: true } : { text: `does not name ${m.host}`, ok: false };
}

export function TlsExtras({ tls }: { tls: Tls }) {
  const chain: ChainCert[] = Array.isArray(tls.chain) ? tls.chain : [];
  const host = hostnameText(tls);
  return (
    <div className="mt-2 space-y-2" data-testid="tls-view">
      <dl className="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
        <dt className="text-slate-500">Hostname</dt>
        <dd data-testid="tls-hostname" className={`font-mono ${host.ok === false ? "text-red-700" : host.ok ? "text-emerald-700" : ""}`}>
          {host.text}
        </dd>
        <dt className="text-slate-500">ALPN</dt>
        <dd className="font-mono" data-testid="tls-alpn">{tls.alpn ?? "—"}</dd>
        <dt className="text-slate-500">OCSP</dt>
        <dd className="font-mono" data-testid="tls-ocsp">{ocspText(tls)}</dd>
      </dl>
      {chain.length > 0 && (
        <table className="w-full min-w-0" data-testid="tls-chain">
          <thead>
            <tr>
              {["#", "Subject / issuer", "Valid", "Key", "SHA-256"].map((h) => (
                <th key={h} className="px-2 py-1 text-left text-xs font-semibold text-slate-500">{h}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {chain.map((c, i) => (
              <tr key={i} className="border-t border-slate-100" data-testid="tls-chain-cert">
                <td className={td}>{i === 0 ? "leaf" : c.is_ca ? "CA" : i}</td>
                <td className={`${td} break-all`}>
                  {c.subject}
                  <div className="text-slate-500">by {c.issuer}</div>
                </td>
                <td className={td}>
                  {c.not_before?.slice(0, 10)} – {c.not_after?.slice(0, 10)}
                </td>
                <td className={td}>{key(c)}</td>
                <td className={`${td} break-all`} title={c.fingerprint_sha256}>{c.fingerprint_sha256}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

interface Assertion {
  assertion: string;
  expected: unknown;
  passed: boolean;
  seen: unknown;
}

const shown = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));

/** options.http.expect's outcome, one row per assertion. */
export function Assertions({ items }: { items: Assertion[] }) {
  return (
    <table className="w-full min-w-0" data-testid="http-assertions">
      <tbody>
        {items.map((a, i) => (
          <tr key={i} className="border-t border-slate-100" data-testid="http-assertion" data-passed={a.passed}>
            <td className={`${td} ${a.passed ? "text-emerald-700" : "text-red-700"}`}>{a.passed ? "✓" : "✗"}</td>
            <td className={td}>{a.assertion}</td>
            <td className={`${td} break-all`}>expected {shown(a.expected)}</td>
            <td className={`${td} break-all`}>saw {shown(a.seen)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
