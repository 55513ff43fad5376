import type { TaskResult } from "../api/types";
import { compareCertificates, shortFingerprint } from "../lib/certificates";

/** The Results page's "certificates differ between agents" flag, with which agents saw which leaf. */
export function CertificatesFlag({ results }: { results: TaskResult[] }) {
  const certs = compareCertificates(results);
  if (!certs?.differ) return null;
  return (
    <div role="alert" data-testid="certificates-differ" className="rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-900">
      <p className="font-semibold">Certificates differ between agents</p>
      <p className="text-xs">Agents were shown different TLS certificates for this name: a CDN edge, a regional deployment or a middlebox.</p>
      <ul className="mt-1.5 space-y-0.5 text-xs">
        {certs.leaves.map((leaf) => (
          <li key={leaf.fingerprint_sha256} data-testid="certificates-leaf">
            <span className="font-mono" title={leaf.fingerprint_sha256}>
              {shortFingerprint(leaf.fingerprint_sha256)}
            </span>{" "}
            {leaf.subject && <span className="text-amber-800">{leaf.subject}</span>} — {leaf.agents.join(", ")}
          </li>
        ))}
      </ul>
    </div>
  );
}
