import type { Certificates, TaskResult } from "../api/types";

/**
 * The leaf certificates the http results saw, grouped by SHA-256 fingerprint, most-seen first;
 * `differ` when agents were shown different ones (a CDN edge or a middlebox in some region).
 * The same rule as the API's `certificates` (chalicelib/views.py), computed from the rows the page
 * holds so it is right while results arrive live. null: no result carries a certificate.
 */
export function compareCertificates(results: TaskResult[]): Certificates | null {
  const groups = new Map<string, Certificates["leaves"][number]>();
  for (const r of results) {
    if (r.check_type !== "http") continue;
    const tls = r.data?.tls;
    const fp = tls && typeof tls === "object" ? tls.fingerprint_sha256 : null;
    if (typeof fp !== "string") continue;
    const group = groups.get(fp) ?? { fingerprint_sha256: fp, subject: tls.subject ?? null, issuer: tls.issuer ?? null, agents: [] as string[] };
    group.agents.push(r.agent.name);
    groups.set(fp, group);
  }
  if (groups.size === 0) return null;
  const leaves = [...groups.values()].sort(
    (a, b) => b.agents.length - a.agents.length || (a.fingerprint_sha256 < b.fingerprint_sha256 ? -1 : 1),
  );
  return { differ: leaves.length > 1, leaves };
}

/** "AB:CD:EF:01…": enough of a fingerprint to tell two apart at a glance. */
export function shortFingerprint(fp: string): string {
  return fp.length > 11 ? `${fp.slice(0, 11)}…` : fp;
}
