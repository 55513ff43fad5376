import uuid
def test_probe(api, db):
    a = api.register("fra-1")
    db.execute("""INSERT INTO agents (id, name, location, api_token_hash, last_heartbeat)
                  SELECT gen_random_uuid(), 'a'||g, 'loc'||(g%10), md5(g::text), now() - (g||' seconds')::interval FROM generate_series(1,2000) g""")
    db.execute("""INSERT INTO checks (id, target, check_types, status, created_at)
                  SELECT gen_random_uuid(), 'h'||(g%500)||'.com', ARRAY['http'], (ARRAY['pending','in_progress','completed','failed'])[1+(g%4)], now() - (g||' seconds')::interval FROM generate_series(1,50000) g""")
    db.execute("""INSERT INTO check_tasks (id, check_id, agent_id, check_type, status, deadline_at, created_at)
                  SELECT gen_random_uuid(), c.id, %s, 'http', CASE WHEN c.status IN ('completed','failed') THEN 'completed' ELSE c.status END, c.created_at + interval '30 s', c.created_at FROM checks c""", (a["agent_id"],))
    db.execute("ANALYZE")
    cid = db.execute("SELECT id FROM checks LIMIT 1").fetchone()["id"]
    qs = {
     "list": "SELECT c.id FROM checks c ORDER BY c.created_at DESC, c.id DESC LIMIT 21",
     "list_cursor": "SELECT c.id FROM checks c WHERE (c.created_at, c.id) < (now() - interval '1 hour', '00000000-0000-0000-0000-000000000000'::uuid) ORDER BY c.created_at DESC, c.id DESC LIMIT 21",
     "list_target": "SELECT c.id FROM checks c WHERE c.target = 'h3.com' ORDER BY c.created_at DESC, c.id DESC LIMIT 21",
     "list_status": "SELECT c.id FROM checks c WHERE c.status = 'failed' ORDER BY c.created_at DESC, c.id DESC LIMIT 21",
     "list_count": "SELECT (SELECT count(*) FROM check_tasks t WHERE t.check_id = c.id) FROM checks c ORDER BY c.created_at DESC, c.id DESC LIMIT 21",
     "online": "SELECT * FROM agents a WHERE a.last_heartbeat > now() - make_interval(secs => 30)",
     "count_online": "SELECT count(*) FROM agents WHERE last_heartbeat > now() - make_interval(secs => 30)",
     "overdue": "SELECT id FROM check_tasks t WHERE t.status IN ('pending','in_progress') AND t.deadline_at <= now()",
     "complete": "SELECT c.id FROM checks c WHERE c.status IN ('pending','in_progress') AND NOT EXISTS (SELECT 1 FROM check_tasks t WHERE t.check_id = c.id AND t.status IN ('pending','in_progress'))",
     "reenqueue": "SELECT t.id FROM check_tasks t WHERE t.status = 'pending' AND t.deadline_at > now() AND (t.stream_id IS NOT NULL OR COALESCE(t.enqueued_at, t.created_at) < now() - interval '15 s') ORDER BY t.created_at LIMIT 1000",
     "retention": "SELECT id FROM checks WHERE created_at < now() - interval '30 days' ORDER BY created_at LIMIT 5000",
     "offline": "SELECT id FROM agents WHERE status = 'online' AND (last_heartbeat IS NULL OR last_heartbeat <= now() - interval '30 s')",
     "task_rows": f"SELECT t.id FROM check_tasks t JOIN agents a ON a.id = t.agent_id LEFT JOIN check_results r ON r.task_id = t.id WHERE t.check_id = '{cid}'",
    }
    for name, q in qs.items():
        plan = db.execute("EXPLAIN " + q).fetchall()
        print("==", name)
        for row in plan: print("   ", row["QUERY PLAN"])
