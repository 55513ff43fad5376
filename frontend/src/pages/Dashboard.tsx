import { NewCheckForm } from "../components/NewCheckForm";
import { MyChecks, RecentChecks } from "../components/RecentChecks";
import { Card } from "../components/States";
import { useTitle } from "../hooks/useTitle";
import { appConfig } from "../config";

export default function Dashboard() {
  useTitle(null);
  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-semibold text-slate-900">Check a host</h1>
        <p className="mt-1 text-sm text-slate-500">
          Is it reachable, and how does it look from different places? Run HTTP, ping, DNS, TCP, traceroute and MTR checks from every agent at once.
        </p>
      </div>
      <Card testId="new-check">
        <NewCheckForm />
      </Card>
      <Card title="Your checks" testId="my-checks-card">
        <MyChecks />
      </Card>
      {appConfig().publicList && (
        <Card title="Everyone's recent checks" testId="recent-checks-card">
          <RecentChecks />
        </Card>
      )}
    </div>
  );
}
