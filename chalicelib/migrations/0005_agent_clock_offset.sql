-- The agent's clock minus the API's, in ms, as the agent estimates it from heartbeat
-- replies (agent/clock.py): shown by GET /api/agents; past protocol.MAX_CLOCK_OFFSET_S
-- the agent refuses work and the fan-out does not choose it. NULL: not reported yet.
ALTER TABLE agents ADD COLUMN IF NOT EXISTS clock_offset_ms double precision;
