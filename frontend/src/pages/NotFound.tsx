import { Link } from "react-router";
import { Empty } from "../components/States";

export default function NotFound() {
  return (
    <Empty testId="not-found">
      <p className="font-medium text-slate-700">Page not found</p>
      <Link to="/" className="mt-1 inline-block text-teal-700 hover:underline">
        Back to the dashboard
      </Link>
    </Empty>
  );
}
