import { NavLink, Outlet } from "react-router";
import { apiDisplayUrl } from "../api/client";
import { useApiUnreachable } from "../hooks/useReachability";

export function ApiBanner() {
  const unreachable = useApiUnreachable();
  if (!unreachable) return null;
  return (
    <div data-testid="api-unreachable-banner" role="alert" className="border-b border-red-300 bg-red-600 px-4 py-2 text-center text-sm font-medium text-white">
      API unreachable at {apiDisplayUrl()}. Retrying in the background…
    </div>
  );
}

const navCls = ({ isActive }: { isActive: boolean }) =>
  `rounded-md px-3 py-1.5 text-sm font-medium ${isActive ? "bg-teal-700 text-white" : "text-teal-50 hover:bg-teal-700/60"}`;

export function Layout() {
  return (
    <div className="flex min-h-screen flex-col">
      <ApiBanner />
      <header className="bg-teal-800 shadow">
        <div className="mx-auto flex max-w-6xl items-center justify-between gap-4 px-4 py-3">
          <NavLink to="/" className="flex items-center gap-2 text-lg font-semibold text-white" data-testid="nav-home">
            <svg viewBox="0 0 32 32" className="h-6 w-6" aria-hidden>
              <circle cx="16" cy="16" r="14" fill="#14b8a6" />
              <path d="M9 16.5l4.5 4.5L23 11.5" stroke="#fff" strokeWidth="3" fill="none" strokeLinecap="round" strokeLinejoin="round" />
            </svg>
            Host Checker
          </NavLink>
          <nav className="flex gap-1">
            <NavLink to="/" end className={navCls} data-testid="nav-dashboard">
              Dashboard
            </NavLink>
            <NavLink to="/agents" className={navCls} data-testid="nav-agents">
              Agents
            </NavLink>
          </nav>
        </div>
      </header>
      <main className="mx-auto w-full max-w-6xl flex-1 px-4 py-6">
        <Outlet />
      </main>
      <footer className="border-t border-slate-200 py-3 text-center text-xs text-slate-400">
        Host Checker · API <span data-testid="api-url">{apiDisplayUrl()}</span>
      </footer>
    </div>
  );
}
