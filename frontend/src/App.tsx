import { useState } from "react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createBrowserRouter, RouterProvider, type RouteObject } from "react-router";
import type { ApiError } from "./api/client";
import { Layout } from "./components/Layout";
import Agents from "./pages/Agents";
import Dashboard from "./pages/Dashboard";
import NotFound from "./pages/NotFound";
import Results from "./pages/Results";

export const routes: RouteObject[] = [
  {
    element: <Layout />,
    children: [
      { path: "/", element: <Dashboard /> },
      { path: "/results/:id", element: <Results /> },
      { path: "/agents", element: <Agents /> },
      { path: "*", element: <NotFound /> },
    ],
  },
];

export function makeQueryClient() {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 1000,
        retry: (count, err) => {
          const e = err as ApiError;
          if (e.status && e.status >= 400 && e.status < 500) return false;
          return count < 1;
        },
      },
    },
  });
}

export default function App({ basename }: { basename: string }) {
  const [router] = useState(() => createBrowserRouter(routes, { basename: basename || undefined }));
  const [queryClient] = useState(makeQueryClient);
  return (
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  );
}
