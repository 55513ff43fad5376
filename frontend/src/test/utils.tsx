import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { createMemoryRouter, RouterProvider } from "react-router";
import type { Check, TaskResult } from "../api/types";

export function renderRoute(
  element: ReactElement,
  { path = "/", route = "/", extraRoutes = [] as { path: string; element: ReactElement }[] } = {},
) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  const router = createMemoryRouter([{ path, element }, ...extraRoutes], { initialEntries: [route] });
  const utils = render(
    <QueryClientProvider client={client}>
      <RouterProvider router={router} />
    </QueryClientProvider>,
  );
  return { ...utils, router, client };
}

let n = 0;
export function result(partial: Partial<TaskResult> & Pick<TaskResult, "check_type">): TaskResult {
  n += 1;
  return {
    task_id: `t${n}`,
    agent: { id: "a1", name: "Frankfurt", location: "eu-central" },
    status: "completed",
    success: true,
    data: {},
    error: null,
    duration_ms: 10,
    started_at: "2025-01-01T00:00:00Z",
    completed_at: "2025-01-01T00:00:01Z",
    ...partial,
  };
}

export const AGENTS = [
  { id: "a1", name: "Frankfurt", location: "eu-central" },
  { id: "a2", name: "Virginia", location: "us-east" },
  { id: "a3", name: "Singapore", location: "ap-southeast" },
];

export function check(partial: Partial<Check> = {}): Check {
  return {
    check_id: "c1",
    target: "https://example.com",
    check_types: ["http"],
    options: {},
    status: "completed",
    created_at: "2025-01-01T00:00:00Z",
    completed_at: "2025-01-01T00:00:02Z",
    summary: null,
    results: [],
    ...partial,
  };
}

export const HTTP_DATA = {
  status_code: 200,
  reason: "OK",
  http_version: "HTTP/1.1",
  final_url: "https://example.com/",
  redirects: [{ url: "http://example.com/", status_code: 301 }],
  timings_ms: { dns: 5, connect: 10, tls: 20, ttfb: 30, download: 7, total: 72 },
  tls: {
    version: "TLSv1.3",
    cipher: "TLS_AES_256_GCM_SHA384",
    subject: "CN=example.com",
    issuer: "CN=Test CA",
    not_after: "2026-01-01T00:00:00Z",
    days_left: 90,
    san: ["example.com", "www.example.com"],
    verified: true,
    verify_error: null,
  },
  headers: { "content-type": "text/html", server: "demo" },
  body_bytes: 1256,
};
