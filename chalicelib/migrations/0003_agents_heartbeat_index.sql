-- Online agents are those with a recent heartbeat: chosen on every POST /api/checks,
-- counted by /health and each sweep. (agents_status_heartbeat leads with status,
-- which those queries do not filter on.)
CREATE INDEX IF NOT EXISTS agents_last_heartbeat ON agents (last_heartbeat);
