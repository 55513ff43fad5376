import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";
import { createMemoryRouter, RouterProvider } from "react-router";
import { beforeEach, describe, expect, it, vi } from "vitest";
import * as endpoints from "./api/endpoints";
import { routes } from "./App";

vi.mock("./api/endpoints", () => ({
  createCheck: vi.fn(),
  listAgents: vi.fn(),
  getCheck: vi.fn(),
  listChecks: vi.fn(),
  getAgentStats: vi.fn(),
}));

function renderAt(path: string) {
  const router = createMemoryRouter(routes, { initialEntries: [path] });
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={client}>
      <RouterProvider router={router} />
    </QueryClientProvider>,
  );
}

beforeEach(() => {
  vi.mocked(endpoints.listAgents).mockResolvedValue({ items: [], next_cursor: null });
  vi.mocked(endpoints.listChecks).mockResolvedValue({ items: [], next_cursor: null });
  vi.mocked(endpoints.getCheck).mockReturnValue(new Promise(() => {}));
});

describe("routes", () => {
  it.each(["/nope", "/agents/3f2a7c1e/x", "/agents/3f2a7c1e", "/results", "/results/abc/extra", "/a/b/c/d"])(
    "%s shows NotFound inside the layout",
    async (path) => {
      renderAt(path);
      expect(await screen.findByTestId("not-found")).toHaveTextContent("Page not found");
      expect(screen.getByTestId("nav-agents")).toBeInTheDocument();
    },
  );

  it.each([
    ["/results/abc", "results-loading"],
    ["/agents", "nav-agents"],
    ["/", "new-check-form"],
  ])("%s is a page", async (path, testId) => {
    renderAt(path);
    expect(await screen.findByTestId(testId)).toBeInTheDocument();
    expect(screen.queryByTestId("not-found")).not.toBeInTheDocument();
  });
});
