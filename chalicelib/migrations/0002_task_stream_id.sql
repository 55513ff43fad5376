-- The Redis stream entry a pending task was last pushed as, so the sweeper can
-- tell a task whose entry is gone (Redis lost) and push it again (DESIGN §4).
ALTER TABLE check_tasks ADD COLUMN IF NOT EXISTS stream_id text;

-- The sweeper's re-enqueue scan and the agent stats window.
CREATE INDEX IF NOT EXISTS check_tasks_pending_enqueued ON check_tasks (enqueued_at)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS check_results_agent_created ON check_results (agent_id, created_at);
-- Retention deletes old checks by creation time (checks_created covers it) and
-- cascades to tasks and results; agents are kept.
