-- Retiring an agent (DELETE /api/agents/{id}) keeps its row, so its past tasks and results
-- stay (they cascade from agents). A retired agent has no token (its hash is replaced by a
-- value no SHA-256 hex equals) and no heartbeat; its name is free for a new registration,
-- so names are unique among the agents not retired only.
ALTER TABLE agents ADD COLUMN IF NOT EXISTS retired_at timestamptz;
ALTER TABLE agents DROP CONSTRAINT IF EXISTS agents_name_key;
CREATE UNIQUE INDEX IF NOT EXISTS agents_name_active ON agents (name) WHERE retired_at IS NULL;
