import { act, render, screen } from "@testing-library/react";
import { createMemoryRouter, RouterProvider } from "react-router";
import { afterEach, describe, expect, it } from "vitest";
import { configureApi, reachability } from "../api/client";
import { Layout } from "./Layout";

function renderLayout() {
  const router = createMemoryRouter([{ path: "/", element: <Layout />, children: [{ index: true, element: <p>page</p> }] }]);
  return render(<RouterProvider router={router} />);
}

afterEach(() => {
  act(() => reachability.set(false));
  configureApi("");
});

describe("API unreachable banner", () => {
  it("appears while the API does not answer and names its URL", () => {
    configureApi("http://127.0.0.1:8000/");
    renderLayout();
    expect(screen.queryByTestId("api-unreachable-banner")).not.toBeInTheDocument();
    act(() => reachability.set(true));
    expect(screen.getByTestId("api-unreachable-banner")).toHaveTextContent("API unreachable at http://127.0.0.1:8000");
    expect(screen.getByText("page")).toBeInTheDocument();
    act(() => reachability.set(false));
    expect(screen.queryByTestId("api-unreachable-banner")).not.toBeInTheDocument();
  });
});
